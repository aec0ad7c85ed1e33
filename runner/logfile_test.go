package runner

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/internal/syncbuf"
)

// TestRotationOnLineBoundaries: whatever the chunking of the writes, every
// rotated file ends with a complete line and the current one starts with
// one; a line longer than the slack is cut (issue 11: output.log rotated
// in the middle of a line).
func TestRotationOnLineBoundaries(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		dir := t.TempDir()
		name := filepath.Join(dir, "output.log")
		const maxSize = 200
		rf := newRotatingFile(name, maxSize, 3)
		var all bytes.Buffer
		for i := range 200 {
			all.WriteString(fmt.Sprintf("line %d %s\n", i, strings.Repeat("x", rng.IntN(40))))
		}
		data := all.Bytes()
		for p := data; len(p) > 0; {
			n := min(len(p), 1+rng.IntN(90))
			if _, err := rf.Write(p[:n]); err != nil {
				t.Fatal(err)
			}
			p = p[n:]
		}
		rf.Close()
		var kept []byte
		for i := 3; i >= 0; i-- {
			f := name
			if i > 0 {
				f = backupName(name, i)
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if len(b) > maxSize+maxSize || !bytes.HasSuffix(b, []byte("\n")) || !bytes.HasPrefix(b, []byte("line ")) {
				t.Fatalf("round %d: %s (%d bytes) does not hold whole lines:\n%q", round, filepath.Base(f), len(b), b)
			}
			kept = append(kept, b...)
		}
		if !bytes.HasSuffix(data, kept) {
			t.Fatalf("round %d: the files are not the end of the output", round)
		}
	}

	// A line longer than a file and its slack is cut, not kept whole.
	name := filepath.Join(t.TempDir(), "output.log")
	rf := newRotatingFile(name, 100, 1)
	if _, err := rf.Write([]byte(strings.Repeat("y", 250) + "\n")); err != nil {
		t.Fatal(err)
	}
	rf.Close()
	b, _ := os.ReadFile(name)
	b1, _ := os.ReadFile(backupName(name, 1))
	if len(b1) != 200 || len(b) != 51 {
		t.Errorf("a 251-byte line in 100-byte files: backup %d bytes, current %d, want 200 and 51", len(b1), len(b))
	}
}

// TestFullDiskWarnsOnce: output that cannot be written (ENOSPC, from
// /dev/full) is dropped with one warning per minute, not silently and not
// once per write (issue 11).
func TestFullDiskWarnsOnce(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	var log syncbuf.Buffer
	clock := newFakeClock()
	r, sts := newTestRunner(t, Options{Clock: clock, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	s := fakeSpec("full", "default", "flood")
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	sts.await(t, s.ID, "running", running)
	// The log's file swapped for /dev/full under the writer: a symlink to
	// it in output.log's place is replaced, not written through
	// (TestPlantedOutputLogReplaced).
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	out := r.insts[s.ID].out
	r.mu.Unlock()
	out.mu.Lock()
	if out.f != nil {
		out.f.Close()
	}
	out.f, out.size, out.midLine = full, 0, false
	out.mu.Unlock()
	eventually(t, "a warning", func() bool { return strings.Contains(log.String(), "instance output dropped") })
	clock.StepWall(dropWarnInterval) // without firing timers
	eventually(t, "a second warning a minute later", func() bool { return strings.Count(log.String(), "instance output dropped") >= 2 })
	if err := r.Stop(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	logged := log.String()
	if n := strings.Count(logged, "instance output dropped"); n != 2 {
		t.Errorf("%d warnings for a flood in two minutes, want 2:\n%s", n, logged)
	}
	if !strings.Contains(logged, "no space left on device") {
		t.Errorf("the warning does not say why:\n%s", logged)
	}
}

// TestTouchCreatesWithoutHolding: Touch leaves an empty file and no
// descriptor; the first write opens it and appends; a FIFO planted in the
// log's place does not block Touch.
func TestTouchCreatesWithoutHolding(t *testing.T) {
	name := filepath.Join(t.TempDir(), "output.log")
	rf := newRotatingFile(name, 1<<20, 1)
	defer rf.Close()
	if err := rf.Touch(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(name); err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after Touch: %v, %v", fi, err)
	}
	if n := openFdsOf(t, name); n != 0 {
		t.Errorf("Touch left %d descriptors open", n)
	}
	if _, err := rf.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(name); string(b) != "hello\n" {
		t.Errorf("output.log = %q", b)
	}

	fifo := filepath.Join(t.TempDir(), "output.log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- newRotatingFile(fifo, 1<<20, 1).Touch() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Touch blocked on a FIFO")
	}
}
