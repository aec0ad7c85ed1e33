package fetch

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
	"time"
)

// TestReadMarkerCache checks that a marker read from its cache is the
// file's content whatever happened to the file: rewritten (a new inode),
// overwritten in place with the same size and its mtime set back, removed;
// and that a caller's changes to a marker it got do not reach the cache.
func TestReadMarkerCache(t *testing.T) {
	s := Open(t.TempDir(), Options{})
	s.cache.trees.racy = 0 // every stat is old enough to trust
	if err := os.MkdirAll(s.treeDir("p", "r1"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(m *marker) {
		t.Helper()
		if err := writeJSONAtomic(s.markerPath("p", "r1"), m); err != nil {
			t.Fatal(err)
		}
	}
	read := func() *marker {
		t.Helper()
		m, err := s.readMarker("p", "r1")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	write(&marker{Source: "./a", Revision: "r1", Hash: "h2:aaaa", BuildCommand: []string{"make"}})
	first := read()
	first.Hash, first.BuildCommand[0] = "changed", "changed"
	if m := read(); m.Hash != "h2:aaaa" || m.BuildCommand[0] != "make" {
		t.Fatalf("a caller's change reached the cache: %+v", m)
	}
	if len(s.cache.markers.m) != 1 {
		t.Fatalf("%d markers cached, want 1", len(s.cache.markers.m))
	}

	write(&marker{Source: "./a", Revision: "r1", Hash: "h2:bbbb"}) // renamed over it
	if m := read(); m.Hash != "h2:bbbb" {
		t.Fatalf("after a rewrite: %+v", m)
	}

	// In place, same size, mtime set back to what it was: ctime still moves.
	name := s.markerPath("p", "r1")
	st, _ := os.Stat(name)
	b, _ := os.ReadFile(name)
	time.Sleep(10 * time.Millisecond)
	b2 := bytes.Replace(b, []byte("bbbb"), []byte("cccc"), 1)
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b2, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(name, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	want := &marker{}
	if err := json.Unmarshal(b2, want); err != nil {
		t.Fatalf("test edit broke the JSON: %v\n%s", err, b2)
	}
	if want.Hash != "h2:cccc" {
		t.Fatalf("test edit: %s", b2)
	}
	if m := read(); m.Hash != want.Hash {
		t.Fatalf("after an edit in place: hash %q, want %q", m.Hash, want.Hash)
	}

	if err := os.Remove(name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.readMarker("p", "r1"); err == nil {
		t.Fatal("a removed marker was read from the cache")
	}
}
