package runner

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
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

// TestStoppingWrittenOnlyWhenTheExitLags: a process that exits at the stop
// signal takes instance.json from running to stopped in one write (the
// twin, which holds the state before the last write, says running); one
// that ignores it is "stopping" in the file once stoppingFileAfter has
// passed, before the kill (the twin says stopping).
func TestStoppingWrittenOnlyWhenTheExitLags(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	fast := fakeSpec("stopfile", "fast", "sleep")
	slow := fakeSpec("stopfile", "slow", "ignoreterm")
	slow.StopTimeout = time.Second
	for _, s := range []instance.Spec{fast, slow} {
		if err := r.Start(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		sts.await(t, s.ID, "running", running)
	}
	awaitReady(t, r, slow.ID, 1)
	twinState := func(id instance.ID) string {
		t.Helper()
		dir := InstanceDir(r.opts.StateDir, id)
		if f, err := ReadInstanceFile(filepath.Join(dir, "instance.json")); err != nil || f.State != "stopped" {
			t.Fatalf("%s after its stop: %+v, %v", id, f, err)
		}
		b, err := os.ReadFile(filepath.Join(dir, ".instance.json"+twinSuffix))
		if err != nil {
			t.Fatal(err)
		}
		var f InstanceFile
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("%s's twin %q: %v", id, b, err)
		}
		return f.State
	}
	for _, c := range []struct {
		s    instance.Spec
		want string
	}{{fast, "running"}, {slow, "stopping"}} {
		if err := r.Stop(t.Context(), c.s.ID); err != nil {
			t.Fatal(err)
		}
		if got := twinState(c.s.ID); got != c.want {
			t.Errorf("%s: the state before stopped was %q, want %q", c.s.ID, got, c.want)
		}
	}
}
