package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
)

func readAheadFixture(t *testing.T, decl string) (*loader, string) {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "empty/.keep"), "")
	file := filepath.Join(dir, "plugs.hcl")
	writeFile(t, file, decl)
	l := newLoader(filepath.Join(dir, ".plugs"), fetch.Options{}, func(*spec.Deployment) render.BrokerInfo { return render.BrokerInfo{} })
	return l, file
}

const readAheadPlug = "plug %q {\n  source = \"./empty\"\n  plugin {\n    kind    = \"script\"\n    command = [\"sleep\", \"9\"]\n  }\n}\n"

func plugDecl(names ...string) string {
	s := ""
	for _, n := range names {
		s += fmt.Sprintf(readAheadPlug, n)
	}
	return s
}

// TestReadAheadReusedOnce: the first load after readAhead starts from its
// read (plugs.hcl is parsed once at start), the next one reads again.
func TestReadAheadReusedOnce(t *testing.T) {
	l, file := readAheadFixture(t, "broker {\n  url = \"tcp://127.0.0.1:1\"\n}\n"+plugDecl("a", "b"))
	dep := l.readAhead(file, map[string]string{"x": "1"})
	if dep == nil || dep.Broker == nil || dep.Broker.URL != "tcp://127.0.0.1:1" {
		t.Fatalf("readAhead: %+v, want the broker block", dep)
	}
	pre := l.pre
	if w, _ := l.open(file, map[string]string{"x": "1"}); pre == nil || w != pre.w {
		t.Fatal("the first open did not start from the read ahead")
	}
	if w, _ := l.open(file, map[string]string{"x": "1"}); w == pre.w {
		t.Fatal("the read ahead was used twice")
	}
	// Other vars or another file: a read of their own.
	l.readAhead(file, map[string]string{"x": "1"})
	pre = l.pre
	if w, _ := l.open(file, map[string]string{"x": "2"}); w == pre.w {
		t.Fatal("the read ahead was used for other vars")
	}
}

// TestReadAheadChangedFileReadAgain: plugs.hcl or its lock replaced after
// readAhead (a save during start) is read anew by the first load: it
// starts what the file says now.
func TestReadAheadChangedFileReadAgain(t *testing.T) {
	l, file := readAheadFixture(t, plugDecl("a", "b"))
	ctx := context.Background()
	if _, err := l.load(ctx, file, nil); err != nil { // fetches, writes no lock
		t.Fatal(err)
	}
	l.readAhead(file, nil)
	writeFile(t, file, plugDecl("a", "b", "c"))
	ld, err := l.load(ctx, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ld.desired) != 3 {
		t.Fatalf("%d instances desired, want the 3 of the file as it is now", len(ld.desired))
	}
	if ld.contentHash != contentHash(file, filepath.Join(filepath.Dir(file), LockFileName)) {
		t.Error("the revision does not name the files as they are")
	}

	// The lock changed alone.
	if err := fetch.WriteLock(ld.lock.Filename, ld.lock); err != nil {
		t.Fatal(err)
	}
	l.readAhead(file, nil)
	writeFile(t, filepath.Join(filepath.Dir(file), LockFileName), "# nothing locked\n")
	if w, _ := l.open(file, nil); w.Lock != nil && len(w.Lock.Plugs) != 0 {
		t.Fatalf("the lock read ahead was used after the lock changed: %d entries", len(w.Lock.Plugs))
	}
}

// TestReadAheadBrokenLockKeepsBrokerBlock: a lock with errors fails the
// load, not the broker block: the daemon connects to the declared broker
// (as when the block was read from plugs.hcl alone).
func TestReadAheadBrokenLockKeepsBrokerBlock(t *testing.T) {
	l, file := readAheadFixture(t, "broker {\n  url = \"tcp://127.0.0.1:1\"\n}\n"+plugDecl("a"))
	writeFile(t, filepath.Join(filepath.Dir(file), LockFileName), "plug \"a\" {\n")
	dep := l.readAhead(file, nil)
	if dep == nil || dep.Broker == nil {
		t.Fatalf("readAhead with a broken lock: %+v, want the broker block", dep)
	}
	if _, err := l.load(context.Background(), file, nil); err == nil {
		t.Fatal("a broken lock loaded")
	}
	// A broken plugs.hcl: no deployment, as before.
	writeFile(t, file, "plug \"a\" {\n")
	if dep := l.readAhead(file, nil); dep != nil {
		t.Fatalf("readAhead of a broken plugs.hcl: %+v", dep)
	}
}
