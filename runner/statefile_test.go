package runner

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// TestInstanceFileSwappedAtomically: instance.json is replaced by a swap
// with its twin, never written in place: a reader that reads it while it
// is rewritten hundreds of times, longer and shorter, always parses a
// whole state; the directory then holds instance.json and its twin only,
// and the first write leaves the twin ready, so that later writes (a
// stop's) create no file.
func TestInstanceFileSwappedAtomically(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "instance.json")
	twin := filepath.Join(dir, ".instance.json"+twinSuffix)
	if err := writeInstanceFile(name, &InstanceFile{Plug: "p", Instance: "i", State: "running", PID: 1}, nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(twin)
	if err != nil {
		t.Fatalf("no twin after the first write: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("twin mode %v, want 0600", fi.Mode().Perm())
	}
	var stop atomic.Bool
	var reads, bad atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			f, err := ReadInstanceFile(name)
			reads.Add(1)
			if err != nil || f.Plug != "p" {
				bad.Add(1)
				t.Errorf("read while rewritten: %+v %v", f, err)
				return
			}
		}
	})
	for i := range 500 {
		f := &InstanceFile{Plug: "p", Instance: "i", State: "running", PID: i}
		if i%2 == 1 {
			f.State, f.Reason = "backoff", strings.Repeat("a long reason ", i%40)
		}
		if err := writeInstanceFile(name, f, nil); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	f, err := ReadInstanceFile(name)
	if err != nil || f.PID != 499 || f.State != "backoff" {
		t.Errorf("last state %+v %v, want pid 499 in backoff", f, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != ".instance.json.next instance.json" {
		t.Errorf("directory holds %v, want instance.json and its twin", got)
	}
	t.Logf("%d reads, %d torn", reads.Load(), bad.Load())
}

// TestWriteConfigFileUnchangedIsNotRewritten: the same bytes and mode
// leave the file alone (its inode stays), an empty config included;
// other bytes, a longer file or another mode are written.
func TestWriteConfigFileUnchangedIsNotRewritten(t *testing.T) {
	for _, data := range [][]byte{[]byte(`{"a":1}`), {}} {
		name := filepath.Join(t.TempDir(), "config.json")
		if err := writeConfigFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ino := func() uint64 {
			fi, err := os.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			return fi.Sys().(*syscall.Stat_t).Ino
		}
		before := ino()
		if err := writeConfigFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if ino() != before {
			t.Errorf("%q written again unchanged", data)
		}
		if err := writeConfigFile(name, append(data, 'x'), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(name); string(b) != string(data)+"x" {
			t.Errorf("changed config: %q", b)
		}
	}
}
