package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
)

// BenchmarkLoadConverge is the load of bench/daemon-times.sh's converge, in
// process: N plugs of one instance each, all from one local folder (as
// make bench declares them), loaded once; then each op loads a plugs.hcl
// with a tenth of them removed, a tenth changed and a tenth added under
// new names (whose trees the load brings into the store), as a daemon's
// reconcile of that save does: with its trees' verification deferred to
// the starts (loadFor's deferVerify), and the lock it resolved written
// after it (untimed). On this VM's ext4 the figure follows the inode
// allocator (README, Performance); TMPDIR=/dev/shm shows the CPU's part.
func BenchmarkLoadConverge(b *testing.B) {
	n := benchInstances(b, 1000)
	dir := b.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(dir, "plugs.hcl")
	declare := func(names []string, changed int) {
		var sb strings.Builder
		for i, name := range names {
			arg := "1"
			if i < changed {
				arg = "2"
			}
			fmt.Fprintf(&sb, "plug %q {\n  source = \"./empty\"\n  plugin {\n    kind    = \"script\"\n    command = [\"sleep\", %q]\n  }\n}\n\n", name, arg)
		}
		if err := os.WriteFile(file, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("p%05d", i)
	}
	declare(names, 0)
	l := newLoader(filepath.Join(dir, ".plugs"), fetch.Options{}, func(*spec.Deployment) render.BrokerInfo { return render.BrokerInfo{} })
	ctx := context.Background()
	ld, err := l.load(ctx, file, nil)
	if err != nil {
		b.Fatal(err)
	}
	writeLock := func(ld *loaded) {
		if err := fetch.WriteLock(ld.lock.Filename, ld.lock); err != nil {
			b.Fatal(err)
		}
	}
	writeLock(ld)
	tenth := n / 10
	round := 0
	for b.Loop() {
		b.StopTimer()
		round++
		next := append([]string(nil), names[tenth:]...)
		for i := range tenth {
			next = append(next, fmt.Sprintf("r%03d-%05d", round, i))
		}
		declare(next, tenth)
		b.StartTimer()
		ld, err := l.loadFor(ctx, file, nil, true)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if len(ld.desired) != len(next) {
			b.Fatalf("%d instances desired, want %d", len(ld.desired), len(next))
		}
		writeLock(ld) // as the daemon does after a load that locked new plugs
		b.StartTimer()
	}
}
