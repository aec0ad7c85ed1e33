package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/plugs-dev/plugs/api"
)

// verifyDecl declares plugs a, b and c, each of its own folder, running
// `sleep` with the argument of gens (a plug's generation: a changed
// command replaces its instance).
func verifyDecl(gens map[string]int) string {
	var b strings.Builder
	for _, p := range []string{"a", "b", "c"} {
		fmt.Fprintf(&b, "plug %q {\n  source = \"./src-%s\"\n  plugin {\n    kind    = \"script\"\n    command = [\"sleep\", \"%d\"]\n  }\n}\n\n", p, p, 3600+gens[p])
	}
	return b.String()
}

// tamperTree rewrites a file of plug's tree in the store.
func tamperTree(t *testing.T, state, plug string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(state, "plugins", plug, "*", "data.txt"))
	if err != nil || len(files) != 1 {
		t.Fatalf("tree of %s: %v %v", plug, files, err)
	}
	_ = os.Chmod(filepath.Dir(files[0]), 0o755)
	_ = os.Chmod(files[0], 0o644)
	if err := os.WriteFile(files[0], []byte("tampered, longer than before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func pidsOf(st *api.Status) map[string]int {
	out := map[string]int{}
	for _, i := range st.Instances {
		if i.State == "running" {
			out[i.Plug] = i.PID
		}
	}
	return out
}

// TestApplyVerifiesTheTreesItStarts: a reconcile verifies the tree of each
// instance it starts or replaces before it changes anything, and leaves
// the trees of the instances it does not touch to the runner's check at
// their next start:
//   - b's tree modified and b's command changed (with c's): the apply
//     fails, names the tree, and no process changes;
//   - b's change undone, c's kept: the apply succeeds, replaces c only,
//     and b runs on (its process started before the change);
//   - b's process killed: its restart is refused, the tree named.
func TestApplyVerifiesTheTreesItStarts(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a", "b", "c"} {
		writeFile(t, filepath.Join(dir, "src-"+p, "data.txt"), p+"\n")
	}
	file, state := filepath.Join(dir, "plugs.hcl"), filepath.Join(dir, ".plugs")
	writeFile(t, file, verifyDecl(nil))
	c := startDaemon(t, Options{File: file, StateDir: state, NoWatch: true})
	st := waitStatus(t, c, "a, b and c running", func(st *api.Status) bool { return len(pidsOf(st)) == 3 })
	before := pidsOf(st)
	ctx := context.Background()

	tamperTree(t, state, "b")
	writeFile(t, file, verifyDecl(map[string]int{"b": 1, "c": 1}))
	if _, err := c.Apply(ctx); err == nil || !strings.Contains(err.Error(), "was modified") || !strings.Contains(err.Error(), filepath.Join("plugins", "b")) {
		t.Fatalf("apply with b's tree modified: %v, want b's tree refused", err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := pidsOf(st); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Fatalf("a refused apply changed processes: %v, before %v", got, before)
	}

	writeFile(t, file, verifyDecl(map[string]int{"c": 1}))
	if _, err := c.Apply(ctx); err != nil {
		t.Fatalf("apply leaving b (tree modified) as it runs: %v", err)
	}
	st, err = c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after := pidsOf(st)
	if after["a"] != before["a"] || after["b"] != before["b"] || after["c"] == before["c"] || after["c"] == 0 {
		t.Fatalf("after the apply: %v, before %v: want c alone replaced", after, before)
	}

	if err := syscall.Kill(after["b"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, c, "b's restart refused", func(st *api.Status) bool {
		i := statusOf(st, "b", "default")
		return i != nil && i.State == "failed"
	})
	if i := statusOf(st, "b", "default"); !strings.Contains(i.Reason, "was modified") {
		t.Errorf("b failed for %q, want its modified tree", i.Reason)
	}
}
