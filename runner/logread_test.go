package runner

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/internal/syncbuf"
)

// writeLines writes lines "line 0" .. "line n-1" through a rotating file
// of maxSize bytes and 3 backups.
func writeLines(t *testing.T, name string, from, to int, maxSize int64) {
	t.Helper()
	rf := newRotatingFile(name, maxSize, 3)
	for i := from; i < to; i++ {
		if _, err := fmt.Fprintf(rf, "line %d\n", i); err != nil {
			t.Fatal(err)
		}
	}
	rf.Close()
}

func want(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}

// TestTailLogReadsBackups: -n N takes lines from the rotated backups when
// output.log holds fewer (issue 11: logs -n never read the backups).
func TestTailLogReadsBackups(t *testing.T) {
	name := filepath.Join(t.TempDir(), "output.log")
	writeLines(t, name, 0, 40, 64) // ~8 lines a file: output.log and three backups
	if _, err := os.Stat(backupName(name, 3)); err != nil {
		t.Fatal("no third backup: ", err)
	}
	cur, _ := os.ReadFile(name)
	inCur := strings.Count(string(cur), "\n")
	for _, n := range []int{0, 1, inCur, inCur + 1, 20, 1000, -1} {
		var buf bytes.Buffer
		if err := TailLog(t.Context(), &buf, name, n, false); err != nil {
			t.Fatal(err)
		}
		var all bytes.Buffer
		for i := 3; i >= 1; i-- {
			b, _ := os.ReadFile(backupName(name, i))
			all.Write(b)
		}
		all.Write(cur)
		lines := strings.SplitAfter(all.String(), "\n")
		lines = lines[:len(lines)-1]
		wantN := n
		if n < 0 || n > len(lines) {
			wantN = len(lines)
		}
		if got, w := buf.String(), strings.Join(lines[len(lines)-wantN:], ""); got != w {
			t.Errorf("-n %d: got %q, want %q", n, got, w)
		}
	}
}

// TestTailLogFollowsAcrossRotation: -f writes what is appended, woken by
// fsnotify, and moves to the new file when the log rotates.
func TestTailLogFollowsAcrossRotation(t *testing.T) {
	name := filepath.Join(t.TempDir(), "output.log")
	writeLines(t, name, 0, 3, 1<<20)
	var out syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- TailLog(ctx, &out, name, 2, true) }()
	eventually(t, "the last two lines", func() bool { return out.String() == want(1, 3) })
	writeLines(t, name, 3, 5, 1<<20)
	eventually(t, "appended lines", func() bool { return out.String() == want(1, 5) })
	// Rotate: a small cap makes the next writes move the file to .1.
	writeLines(t, name, 5, 30, 40)
	eventually(t, "lines across rotations", func() bool {
		s := out.String()
		return strings.HasPrefix(s, want(1, 5)) && strings.HasSuffix(s, "line 29\n")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
