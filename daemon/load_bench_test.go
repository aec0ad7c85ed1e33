package daemon

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
)

// BenchmarkFirstLoadSideBySide measures the load of a daemon's first
// reconcile at the side by side's cold start: N = PLUGS_BENCH_INSTANCES
// (default 1000) plugs of one `sleep` each, all fetched already (`plugs
// fetch`, untimed), read by a new loader each time (no lock cache, no
// tree fingerprints: what a process that has just started knows).
func BenchmarkFirstLoadSideBySide(b *testing.B) {
	s := newSideBySide(b, benchInstances(b, 1000))
	state := filepath.Join(filepath.Dir(s.file), ".plugs")
	newL := func() *loader {
		return newLoader(state, fetch.Options{}, func(*spec.Deployment) render.BrokerInfo { return render.BrokerInfo{} })
	}
	ctx := context.Background()
	ld, err := newL().load(ctx, s.file, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := fetch.WriteLock(ld.lock.Filename, ld.lock); err != nil {
		b.Fatal(err)
	}
	profileFromHere(b)
	for b.Loop() {
		ld, err := newL().load(ctx, s.file, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(ld.desired) != len(s.plugs) || ld.lockChanged {
			b.Fatalf("%d instances desired (want %d), lock changed %v", len(ld.desired), len(s.plugs), ld.lockChanged)
		}
	}
}
