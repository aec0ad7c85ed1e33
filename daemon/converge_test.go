package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
)

// waitRecord polls the log until a record with message msg is there
// (bounded).
func waitRecord(t *testing.T, logs *jsonLog, msg string) {
	t.Helper()
	for range 400 {
		if count(logs.records(t), msg) > 0 {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("no %q record; log:\n%s", msg, logs.buf.String())
}

// TestWatchSkipsWhatApplyApplied: plugs.hcl is replaced and plugs apply
// run at once, as a user (or CI) does. The apply converges; the file
// watch's own reconcile of the same save, and of the lock the apply
// wrote for the new plug, finds that content running and does nothing:
// no second load and plan, no second "reconciled".
func TestWatchSkipsWhatApplyApplied(t *testing.T) {
	_, file := sleeperDir(t, sleeperDeployment(map[string]string{"a": "1s"}))
	logs := &jsonLog{}
	c := startDaemon(t, Options{File: file, StateDir: filepath.Join(filepath.Dir(file), ".plugs"),
		Debounce: 500 * time.Millisecond,
		Logger:   slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	writeFile(t, file, sleeperDeployment(map[string]string{"a": "1s", "b": "1s"}))
	rep, err := c.Apply(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Started != 1 {
		t.Fatalf("apply started %d instances, want 1 (b): %+v", rep.Started, rep)
	}
	waitRecord(t, logs, "file changed: its content runs already")
	recs := logs.records(t)
	if got := count(recs, "reconciled"); got != 2 {
		t.Errorf("%d \"reconciled\" records, want 2 (start, apply): the watch reloaded what the apply applied", got)
	}
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := contentHash(file, filepath.Join(filepath.Dir(file), LockFileName))
	if r := st.Daemon.LastReconcile; r == nil || r.Revision != want || r.Error != "" {
		t.Errorf("last reconcile %+v, want revision %s (the files with the lock the apply wrote)", r, want)
	}
	// A real change is not skipped.
	writeFile(t, file, sleeperDeployment(map[string]string{"a": "2s", "b": "1s"}))
	st = waitStatus(t, c, "the watch's reconcile of a real change", func(s *api.Status) bool {
		r := s.Daemon.LastReconcile
		return s.Daemon.Reconciling == nil && r != nil && r.Revision != want
	})
	if got := count(logs.records(t), "reconciled"); got != 3 {
		t.Errorf("%d \"reconciled\" records after a real change, want 3", got)
	}
}

// TestStopCancelsReconcileQuietly: a stop (SIGTERM: Run's context ends)
// while plugs apply is starting many instances cancels it. It is logged
// once, at info level, without the changes it did not get to, and never
// as an ERROR; the apply's client is told; nothing is left running.
func TestStopCancelsReconcileQuietly(t *testing.T) {
	dir, file := sleeperDir(t, sleeperDeployment(map[string]string{"a": "1s"}))
	logs := &jsonLog{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	errc := make(chan error, 1)
	opts := Options{File: file, StateDir: filepath.Join(dir, ".plugs"), NoWatch: true, ApplyParallelism: 1,
		MetricsAddr: "127.0.0.1:0", BrokerAddr: "127.0.0.1:0", Ready: func() { close(ready) },
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	go func() { errc <- Run(ctx, opts) }()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("Run ended before ready: %v", err)
	}
	c, err := api.Dial(opts.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 30 instances whose pre_start takes a while, one at a time.
	var b strings.Builder
	b.WriteString(sleeperDeployment(map[string]string{"a": "1s"}))
	b.WriteString("plug \"slow\" {\n  source = \"./plugins/sleeper\"\n  hooks {\n    pre_start = [\"sleep\", \"0.1\"]\n  }\n")
	for i := range 30 {
		fmt.Fprintf(&b, "  instance \"i%d\" {}\n", i)
	}
	b.WriteString("}\n")
	writeFile(t, file, b.String())
	applied := make(chan error, 1)
	go func() {
		_, err := c.Apply(context.Background())
		applied <- err
	}()
	waitStatus(t, c, "the apply starting instances", func(s *api.Status) bool {
		return s.Daemon.Reconciling != nil && s.Daemon.Reconciling.Step == "apply" && len(s.Instances) > 2
	})
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := <-applied; err == nil || !strings.Contains(err.Error(), "canceled: the daemon is stopping") {
		t.Errorf("apply during the stop: %v, want it canceled", err)
	}
	recs := logs.records(t)
	if got := count(recs, "reconcile canceled: the daemon is stopping"); got != 1 {
		t.Errorf("%d cancellation records, want 1", got)
	}
	for _, r := range recs {
		if r["level"] == "ERROR" || r["msg"] == "reconcile failed" {
			t.Errorf("an error logged for a stop: %v", r)
		}
		if s := fmt.Sprint(r); len(s) > 1000 {
			t.Errorf("a record of %d bytes: %.300s…", len(s), s)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs.buf.String())
	}
}
