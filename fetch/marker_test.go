package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/spec"
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
		if err := s.writeMarker("p", "r1", m); err != nil {
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

// TestTornMarkerRefetched: install writes a tree's marker without an fsync
// of its own (Sync flushes them together), so a crash can leave a marker
// empty or cut short. Such a marker is no marker: the next fetch brings
// the tree in again, runs from it, and writes a whole marker; a frozen
// fetch (a lock that names the tree) does too.
func TestTornMarkerRefetched(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frozen bool
		torn   func(whole []byte) []byte
	}{
		{"empty", false, func([]byte) []byte { return nil }},
		{"cut", false, func(b []byte) []byte { return b[:len(b)/2] }},
		{"cut, frozen", true, func(b []byte) []byte { return b[:len(b)/2] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := deployment(t, plugOf("p", "./p", ""))
			localPlugin(t, d.BaseDir, "p", "")
			state := filepath.Join(t.TempDir(), ".plugs")
			l := &spec.Lock{Plugs: map[string]*spec.LockedPlug{}}
			trees := mustFetch(t, Open(state, Options{}), d, l, false)
			rev := l.Plugs["p"].Revision
			s := Open(state, Options{}) // a restart: nothing cached
			name := s.markerPath("p", rev)
			whole, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, tc.torn(whole), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Runnable(d, l); err == nil {
				t.Fatal("a torn marker was taken for a whole one")
			}
			trees = mustFetch(t, s, d, l, tc.frozen)
			if got := readFile(t, filepath.Join(trees[0].Dir, "run.sh")); got != "#!/bin/sh\necho p\n" {
				t.Errorf("tree after the fetch: run.sh = %q", got)
			}
			if m, err := Open(state, Options{}).readMarker("p", rev); err != nil || m.Hash != l.Plugs["p"].Hash {
				t.Fatalf("marker after the fetch: %+v, %v", m, err)
			}
			if _, err := s.Runnable(d, l); err != nil {
				t.Fatalf("not runnable after the fetch: %v", err)
			}
		})
	}
}

// TestSyncOncePerFetch: a fetch that installs a tree flushes it before it
// returns, unless DeferSync, which leaves it to the caller's Sync; a
// Cache shared by two Stores (the daemon's loaders) is flushed by either.
func TestSyncOncePerFetch(t *testing.T) {
	d := deployment(t, plugOf("p", "./p", ""), plugOf("q", "./p", ""))
	localPlugin(t, d.BaseDir, "p", "")
	state := filepath.Join(t.TempDir(), ".plugs")
	c := NewCache()
	s := Open(state, Options{Cache: c})
	l := &spec.Lock{Plugs: map[string]*spec.LockedPlug{}}
	mustFetch(t, s, d, l, false)
	if c.Unsynced() {
		t.Fatal("a fetch returned with its trees not flushed")
	}
	d.Plugs = append(d.Plugs, plugOf("r", "./p", ""))
	if _, err := s.Fetch(context.Background(), d, l, FetchOptions{DeferSync: true}); err != nil {
		t.Fatal(err)
	}
	if !c.Unsynced() {
		t.Fatal("DeferSync: the installed tree is not left to Sync")
	}
	if err := Open(state, Options{Cache: c}).Sync(); err != nil {
		t.Fatal(err)
	}
	if c.Unsynced() {
		t.Fatal("Sync of another Store of the cache left it unsynced")
	}
	if _, err := s.Fetch(context.Background(), d, l, FetchOptions{DeferSync: true}); err != nil || c.Unsynced() {
		t.Fatalf("a fetch that installed nothing left the cache unsynced (%v)", err)
	}
}
