package runner

import (
	"context"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/internal/syncbuf"
)

// TestTailLogFollowWakesOnEvents: plugs logs -f (runner.TailLog, its one
// home) is woken by the file system, not a tick. The file that reads the
// log imports no clock at all (so no ticker, timer or sleep can creep into
// the follow loop), and a line appended after a quiet second shows within
// 250 ms, less than any polling interval worth having.
func TestTailLogFollowWakesOnEvents(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "logread.go", nil, parser.ImportsOnly)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "time" {
			t.Errorf("logread.go imports %q: the follow loop must wake on fsnotify only", p)
		}
	}

	name := t.TempDir() + "/output.log"
	if err := os.WriteFile(name, []byte("first\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- TailLog(ctx, &out, name, -1, true) }()
	eventually(t, "the first line", func() bool { return out.String() == "first\n" })
	time.Sleep(time.Second) // quiet: a poller would be mid-interval now

	lf, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := lf.WriteString("appended\n"); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	for !strings.HasSuffix(out.String(), "appended\n") {
		if time.Since(start) > 250*time.Millisecond {
			t.Fatalf("the appended line did not show within 250 ms: %q", out.String())
		}
		time.Sleep(2 * time.Millisecond) // the test's own wait, not TailLog's
	}
	t.Logf("appended line shown after %v", time.Since(start))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
