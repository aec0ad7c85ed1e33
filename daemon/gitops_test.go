package daemon

import (
	"cmp"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/internal/gittest"
)

// runDaemon runs a daemon and returns its client and a stop that waits for
// Run to return (also called when the test ends).
func runDaemon(t *testing.T, opts Options) (*api.Client, func()) {
	t.Helper()
	opts.MetricsAddr, opts.BrokerAddr, opts.NoWatch = "127.0.0.1:0", cmp.Or(opts.BrokerAddr, "127.0.0.1:0"), true
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ready := make(chan struct{})
	opts.Ready = func() { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, opts) }()
	select {
	case <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("Run ended before ready: %v", err)
	}
	c, err := api.Dial(opts.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		c.Close()
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return c, stop
}

// TestGitOpsLastGoodCommitAtStart: a GitOps daemon (re)started while the
// head is broken, or while the remote is unreachable, runs the last commit
// that reconciled, says so, and logs the same failure once however many
// intervals retry it.
func TestGitOpsLastGoodCommitAtStart(t *testing.T) {
	repo := gittest.NewRepo(t)
	files := map[string]string{"deploy/plugs.hcl": sleeperDeployment(map[string]string{"a": "5s"})}
	for k, v := range sleeperPlugin {
		files["deploy/"+k] = v
	}
	good := repo.Commit(files)
	base, stopServer := gittest.StoppableDaemon(t, repo.Root)
	url := base + "/repo"
	stateDir := t.TempDir()
	opts := Options{StateDir: stateDir, Repo: url, Ref: "main", Path: "deploy/plugs.hcl", Interval: time.Hour}

	c, stop := runDaemon(t, opts)
	waitStatus(t, c, "a running", func(s *api.Status) bool { return len(pids(s)) == 1 && s.Daemon.LastGood == good })
	stop()

	broken := repo.Commit(map[string]string{"deploy/plugs.hcl": "plug \"a\" {\n  source = \"./plugins/sleeper\"\n  bogus = 1\n}\n"})
	logs := &jsonLog{}
	o := opts
	o.Interval = 50 * time.Millisecond
	o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	c, stop = runDaemon(t, o)
	st := waitStatus(t, c, "the last good commit running", func(s *api.Status) bool { return len(pids(s)) == 1 })
	r := st.Daemon.LastReconcile
	if st.Daemon.ConfigRevision != good || st.Daemon.LastGood != good || r == nil || r.Revision != broken ||
		!strings.Contains(r.Error, "running last good commit "+good[:12]+"; head "+broken[:12]+" failed") || len(r.Diagnostics) == 0 {
		t.Errorf("broken head at start: revision %s, last good %s, last reconcile %+v; want %s running and the head's failure",
			st.Daemon.ConfigRevision, st.Daemon.LastGood, r, good)
	}
	// Intervals retry the head; its failure is logged once.
	first := r.At
	seen := 0
	waitStatus(t, c, "three more interval reconciles", func(s *api.Status) bool {
		if l := s.Daemon.LastReconcile; l != nil && !l.At.Equal(first) {
			first = l.At
			seen++
		}
		return seen >= 3
	})
	if n := count(logs.records(t), "reconcile failed"); n != 1 {
		t.Errorf("the same failure was logged %d times over several intervals, want once", n)
	}
	stop()

	// The remote goes away: a restart still runs the last good commit.
	stopServer()
	c, _ = runDaemon(t, opts)
	st = waitStatus(t, c, "the last good commit running, offline", func(s *api.Status) bool { return len(pids(s)) == 1 })
	if r := st.Daemon.LastReconcile; st.Daemon.ConfigRevision != good || r == nil ||
		!strings.Contains(r.Error, "running last good commit "+good[:12]+"; the config repository is unreachable") {
		t.Errorf("unreachable remote at start: revision %s, last reconcile %+v", st.Daemon.ConfigRevision, r)
	}
}
