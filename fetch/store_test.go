package fetch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/spec"
)

// inlinePlug is a plug of a folder without a manifest, described by an
// inline plugin {} block with a build.
func inlinePlug(t *testing.T, dir string, build ...string) *spec.Plug {
	t.Helper()
	for n, c := range map[string]string{
		"run.sh":   "#!/bin/sh\ncat out.bin\n",
		"build.sh": "echo building with \"$@\"\necho \"artifact $*\" > out.bin\n",
	} {
		p := filepath.Join(dir, "tool", n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := plugOf("tool", "./tool", "")
	p.Plugin = &spec.Manifest{Name: "tool", Kind: "script", Command: []string{"sh", "run.sh"}, Build: build}
	return p
}

// TestInlineBuildChange: changing the build of an inline plugin {} block
// makes the tree "not built" until plugs build, which builds the pristine
// source into a new folder; the earlier build stays usable.
func TestInlineBuildChange(t *testing.T) {
	ctx := context.Background()
	d := deployment(t)
	p := inlinePlug(t, d.BaseDir, "sh", "build.sh", "one")
	d.Plugs = []*spec.Plug{p}
	s := newStore(t)
	l := mustLock(t, s, d, nil)
	trees, err := s.Build(ctx, d, l)
	if err != nil {
		t.Fatal(err)
	}
	dirOne := trees[0].Dir
	if got := readFile(t, filepath.Join(dirOne, "out.bin")); got != "artifact one\n" {
		t.Fatalf("first build: out.bin = %q", got)
	}
	if run, err := s.Runnable(d, l); err != nil || run["tool"].Dir != dirOne {
		t.Fatalf("runnable after the first build: %v, %v", run, err)
	}

	p.Plugin.Build = []string{"sh", "build.sh", "two"}
	_, err = s.Runnable(d, l)
	if err == nil || !strings.Contains(err.Error(), `plug tool: not built with build command "sh build.sh two"; run plugs build`) {
		t.Fatalf("runnable after the build changed: %v", err)
	}
	if trees := mustFetch(t, s, d, l, true); trees[0].Built {
		t.Fatal("Fetch says built after the build command changed")
	}
	trees, err = s.Build(ctx, d, l)
	if err != nil {
		t.Fatal(err)
	}
	dirTwo := trees[0].Dir
	if dirTwo == dirOne {
		t.Fatalf("both builds in %s: a changed build must get a new folder", dirOne)
	}
	if got := readFile(t, filepath.Join(dirTwo, "out.bin")); got != "artifact two\n" {
		t.Errorf("second build: out.bin = %q (built from the pristine source?)", got)
	}
	if _, err := os.Stat(filepath.Join(s.treeDir("tool", l.Plugs["tool"].Revision), "out.bin")); err == nil {
		t.Error("the fetched source tree holds a build output")
	}
	if run, err := s.Runnable(d, l); err != nil || run["tool"].Dir != dirTwo {
		t.Fatalf("runnable after the second build: %v, %v", run, err)
	}

	// Back to the first command: its tree is still there, nothing is built.
	p.Plugin.Build = []string{"sh", "build.sh", "one"}
	if run, err := s.Runnable(d, l); err != nil || run["tool"].Dir != dirOne {
		t.Fatalf("runnable with the first command again: %v, %v", run, err)
	}

	// A bundle carries the built tree; the host runs it offline.
	out := filepath.Join(t.TempDir(), "b.tgz")
	if err := s.WriteBundle(ctx, out, d, l); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(t.TempDir(), "host")
	if _, err := Unbundle(ctx, out, host); err != nil {
		t.Fatal(err)
	}
	run, err := Open(host, Options{Offline: true}).Runnable(d, l)
	if err != nil {
		t.Fatalf("runnable from the bundle: %v", err)
	}
	if got := readFile(t, filepath.Join(run["tool"].Dir, "out.bin")); got != "artifact one\n" {
		t.Errorf("bundled out.bin = %q", got)
	}
	p.Plugin.Build = []string{"sh", "build.sh", "two"}
	if _, err := Open(host, Options{Offline: true}).Runnable(d, l); err == nil || !strings.Contains(err.Error(), "not") {
		t.Errorf("runnable from the bundle with another build command: %v, want an error", err)
	}
}

// TestRunnableVerifiesOnceThenOnChange: a Store hashes a tree's content the
// first time Runnable sees it, not again while no file's metadata changed,
// and again (finding the change) once one did.
func TestRunnableVerifiesOnceThenOnChange(t *testing.T) {
	d := deployment(t, plugOf("p", "./p", ""))
	localPlugin(t, d.BaseDir, "p", "")
	s := newStore(t)
	s.cache.trees.racy = -time.Hour // the files were just written: remember them anyway
	l := mustLock(t, s, d, nil)
	mustFetch(t, s, d, l, true)
	hashed := func() int {
		s.cache.trees.mu.Lock()
		defer s.cache.trees.mu.Unlock()
		return s.cache.trees.hashed
	}

	run, err := s.Runnable(d, l)
	if err != nil {
		t.Fatal(err)
	}
	first := hashed()
	if first == 0 {
		t.Fatal("the first Runnable did not hash the tree")
	}
	for range 3 {
		if _, err := s.Runnable(d, l); err != nil {
			t.Fatal(err)
		}
	}
	if got := hashed(); got != first {
		t.Errorf("unchanged tree hashed %d more times", got-first)
	}
	// A fresh Store (a daemon's start) verifies again.
	fresh := Open(s.dir, Options{})
	if _, err := fresh.Runnable(d, l); err != nil {
		t.Fatal(err)
	}
	if fresh.cache.trees.hashed == 0 {
		t.Error("a new Store trusted a tree it never hashed")
	}

	// Tampered, its mtime put back: still found.
	f := filepath.Join(run["p"].Dir, "run.sh")
	st, err := os.Stat(f)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(f, 0o755)
	if err := os.WriteFile(f, []byte("#!/bin/sh\necho evil; exit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(f, st.Mode())
	if err := os.Chtimes(f, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Runnable(d, l); err == nil || !strings.Contains(err.Error(), "was modified") {
		t.Fatalf("runnable of a tampered tree: %v", err)
	}
}

// TestSharedCacheVerifiesOnce: Stores opened with one Cache (a daemon's
// loader and its runner's check before each start) hash a tree once
// between them and read its marker once, and a tree modified after that
// is still refused by the other Store.
func TestSharedCacheVerifiesOnce(t *testing.T) {
	d := deployment(t, plugOf("p", "./p", ""))
	localPlugin(t, d.BaseDir, "p", "")
	c := NewCache()
	c.trees.racy = -time.Hour // the files were just written: remember them anyway
	loader := Open(t.TempDir(), Options{Cache: c})
	l := mustLock(t, loader, d, nil)
	mustFetch(t, loader, d, l, true)
	run, err := loader.Runnable(d, l)
	if err != nil {
		t.Fatal(err)
	}
	hashed := func() int {
		c.trees.mu.Lock()
		defer c.trees.mu.Unlock()
		return c.trees.hashed
	}
	first := hashed()
	starts := Open(loader.dir, Options{Offline: true, Cache: c})
	if err := starts.VerifyDir(run["p"].Dir); err != nil {
		t.Fatal(err)
	}
	if got := hashed(); got != first {
		t.Errorf("the second Store hashed the verified tree again (%d more)", got-first)
	}
	c.markers.mu.Lock()
	markers := len(c.markers.m)
	c.markers.mu.Unlock()
	if markers != 1 {
		t.Errorf("%d markers cached, want the one both Stores read", markers)
	}
	// Modified after the first Store's verify: the second finds it.
	f := filepath.Join(run["p"].Dir, "run.sh")
	if err := os.Chmod(f, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte("#!/bin/sh\necho changed\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := starts.VerifyDir(run["p"].Dir); err == nil || !strings.Contains(err.Error(), "modified") {
		t.Errorf("VerifyDir of a tree modified after the shared verify = %v, want modified", err)
	}
}

// TestOnFetched: the hook reports each plug Fetch had to bring in, once.
func TestOnFetched(t *testing.T) {
	d := deployment(t, plugOf("a", "./a", ""), plugOf("b", "./b", ""))
	localPlugin(t, d.BaseDir, "a", "")
	localPlugin(t, d.BaseDir, "b", "")
	var mu sync.Mutex
	got := map[string]int{}
	s := Open(filepath.Join(t.TempDir(), ".plugs"), Options{OnFetched: func(plug string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if d <= 0 {
			t.Errorf("OnFetched(%s, %v): want a positive duration", plug, d)
		}
		got[plug]++
	}})
	l := &spec.Lock{}
	mustFetch(t, s, d, l, false) // resolves and fetches both
	mustFetch(t, s, d, l, true)  // both in the store: nothing to report
	mu.Lock()
	defer mu.Unlock()
	if got["a"] != 1 || got["b"] != 1 || len(got) != 2 {
		t.Errorf("OnFetched calls = %v, want a and b once", got)
	}
}

// TestVerifyDir: what the runner calls before every start passes a fetched
// tree without hashing it again, refuses one modified since, and leaves a
// folder outside the store alone.
func TestVerifyDir(t *testing.T) {
	d := deployment(t, plugOf("p", "./p", ""))
	localPlugin(t, d.BaseDir, "p", "")
	s := newStore(t)
	s.cache.trees.racy = -time.Hour
	l := mustLock(t, s, d, nil)
	mustFetch(t, s, d, l, true)
	run, err := s.Runnable(d, l)
	if err != nil {
		t.Fatal(err)
	}
	dir := run["p"].Dir
	if err := s.VerifyDir(dir); err != nil {
		t.Fatalf("VerifyDir of a fetched tree: %v", err)
	}
	if err := s.VerifyDir(t.TempDir()); err != nil {
		t.Errorf("VerifyDir of a folder outside the store: %v", err)
	}
	f := filepath.Join(dir, "run.sh")
	_ = os.Chmod(dir, 0o755)
	_ = os.Chmod(f, 0o755)
	if err := os.WriteFile(f, []byte("#!/bin/sh\necho evil\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyDir(dir); err == nil || !strings.Contains(err.Error(), "was modified") {
		t.Fatalf("VerifyDir of a modified tree: %v, want \"was modified\"", err)
	}
	if err := s.VerifyDir(filepath.Join(dir, "..", "nonesuch")); err == nil {
		t.Error("VerifyDir of a store folder with no fetch record passed")
	}
}

// storeEntries lists the names in plug's folder of the store.
func storeEntries(t *testing.T, s *Store, plug string) []string {
	t.Helper()
	ents, err := os.ReadDir(s.plugDir(plug))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestResolveLocalInstallsWhatItHashed: a new local plug is resolved and
// installed from one copy of its source (the copy that was hashed), which
// leaves nothing but its tree and marker in the store; resolved again
// while that revision is in the store, the new copy is thrown away.
func TestResolveLocalInstallsWhatItHashed(t *testing.T) {
	d := deployment(t, plugOf("p", "./p", ""))
	localPlugin(t, d.BaseDir, "p", "")
	s := newStore(t)
	l := &spec.Lock{Plugs: map[string]*spec.LockedPlug{}}
	trees := mustFetch(t, s, d, l, false)
	e := l.Plugs["p"]
	if e == nil || e.Hash == "" || e.Revision == "" {
		t.Fatalf("lock entry after fetch: %+v", e)
	}
	want := []string{e.Revision, e.Revision + ".done.json"}
	if got := storeEntries(t, s, "p"); !slices.Equal(got, want) {
		t.Fatalf("store holds %q, want %q", got, want)
	}
	if got := readFile(t, filepath.Join(trees[0].Dir, "run.sh")); got != "#!/bin/sh\necho p\n" {
		t.Errorf("installed run.sh = %q", got)
	}
	if h, err := hashDir(trees[0].Dir); err != nil || h != e.Hash {
		t.Errorf("installed tree hashes to %s (%v), lock has %s", h, err, e.Hash)
	}
	if _, err := s.Runnable(d, l); err != nil {
		t.Fatal(err)
	}

	delete(l.Plugs, "p") // resolved again: the same content, in the store already
	mustFetch(t, s, d, l, false)
	if got := l.Plugs["p"]; got == nil || got.Revision != e.Revision || got.Hash != e.Hash {
		t.Fatalf("resolved again: %+v, want revision %s", got, e.Revision)
	}
	if got := storeEntries(t, s, "p"); !slices.Equal(got, want) {
		t.Fatalf("store holds %q after a second resolve, want %q", got, want)
	}
}

// TestRunnableErrorsInPlugOrder: Runnable checks plugs in parallel, and
// reports every plug that cannot run, in declaration order, returning no
// tree then.
func TestRunnableErrorsInPlugOrder(t *testing.T) {
	var plugs []*spec.Plug
	for i := range 12 {
		plugs = append(plugs, plugOf(fmt.Sprintf("p%02d", i), fmt.Sprintf("./p%02d", i), ""))
	}
	d := deployment(t, plugs...)
	for _, p := range plugs {
		localPlugin(t, d.BaseDir, p.Name, "")
	}
	s := newStore(t)
	l := &spec.Lock{Plugs: map[string]*spec.LockedPlug{}}
	mustFetch(t, s, d, l, false)
	run, err := s.Runnable(d, l)
	if err != nil || len(run) != len(plugs) {
		t.Fatalf("runnable: %d trees, %v", len(run), err)
	}
	for _, p := range plugs {
		if run[p.Name] == nil || run[p.Name].Plug != p.Name {
			t.Fatalf("tree of %s: %+v", p.Name, run[p.Name])
		}
	}
	for _, n := range []string{"p09", "p02", "p05"} {
		if err := os.Remove(s.markerPath(n, l.Plugs[n].Revision)); err != nil {
			t.Fatal(err)
		}
	}
	run, err = s.Runnable(d, l)
	if err == nil || run != nil {
		t.Fatalf("runnable with 3 plugs unfetched: %d trees, %v", len(run), err)
	}
	msg := err.Error()
	i2, i5, i9 := strings.Index(msg, "p02"), strings.Index(msg, "p05"), strings.Index(msg, "p09")
	if i2 < 0 || i5 < i2 || i9 < i5 || strings.Count(msg, "not fetched") != 3 {
		t.Errorf("error not of the 3 plugs in order: %s", msg)
	}
}

// TestSharedLocalSourceHashedOncePerFetch: plugs of one local folder (one
// plugin, many plugs) have it hashed once per Fetch, and a change of it is
// seen by each of them.
func TestSharedLocalSourceHashedOncePerFetch(t *testing.T) {
	d := deployment(t, plugOf("a", "./p", ""), plugOf("b", "./p", ""), plugOf("c", "./p", ""))
	localPlugin(t, d.BaseDir, "p", "")
	s := newStore(t)
	s.cache.trees.racy = time.Hour // the source was just written: never remembered, hashed at each look
	l := &spec.Lock{Plugs: map[string]*spec.LockedPlug{}}
	mustFetch(t, s, d, l, false)
	before := l.Plugs["a"].Revision
	hashed := func() int {
		s.cache.trees.mu.Lock()
		defer s.cache.trees.mu.Unlock()
		return s.cache.trees.hashed
	}
	h0 := hashed()
	mustFetch(t, s, d, l, false)
	if n := hashed() - h0; n != 1 {
		t.Errorf("a Fetch of 3 plugs of one unchanged source hashed it %d times, want 1", n)
	}

	if err := os.WriteFile(filepath.Join(d.BaseDir, "p", "run.sh"), []byte("#!/bin/sh\necho changed\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	trees := mustFetch(t, s, d, l, false)
	for i, n := range []string{"a", "b", "c"} {
		if l.Plugs[n].Revision == before {
			t.Errorf("%s still locked at %s after its source changed", n, before)
		}
		if got := readFile(t, filepath.Join(trees[i].Dir, "run.sh")); got != "#!/bin/sh\necho changed\n" {
			t.Errorf("%s runs %q", n, got)
		}
	}
}
