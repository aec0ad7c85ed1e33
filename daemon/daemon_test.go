package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/internal/gittest"
)

// sleeperPlugin is a shell plugin that runs until stopped.
var sleeperPlugin = map[string]string{
	"plugins/sleeper/plugin.hcl": `plugin "sleeper" {
  version = "1.0.0"
  kind    = "script"
  command = ["sh", "-c", "while true; do sleep 1; done"]
  param "interval" {
    type    = string
    default = "1s"
  }
}
`,
}

func sleeperDeployment(plugs map[string]string) string {
	var b strings.Builder
	for name, interval := range plugs {
		fmt.Fprintf(&b, "plug %q {\n  source = \"./plugins/sleeper\"\n  params = { interval = %q }\n}\n", name, interval)
	}
	return b.String()
}

// startDaemon runs a daemon until the test ends and returns its client.
func startDaemon(t testing.TB, opts Options) *api.Client {
	t.Helper()
	opts.MetricsAddr = "127.0.0.1:0"
	opts.BrokerAddr = "127.0.0.1:0"
	opts.NoWatch = opts.NoWatch || opts.Repo != ""
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ready := make(chan struct{})
	opts.Ready = func() { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-errc:
		errc <- err
		t.Fatalf("Run ended before ready: %v", err)
	}
	c, err := api.Dial(opts.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// waitStatus polls the daemon's status until ok accepts it (bounded).
func waitStatus(t testing.TB, c *api.Client, what string, ok func(*api.Status) bool) *api.Status {
	t.Helper()
	var st *api.Status
	for range 400 {
		var err error
		if st, err = c.Status(context.Background()); err == nil && ok(st) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st != nil && st.Daemon.LastReconcile != nil {
		t.Logf("last reconcile: %+v", *st.Daemon.LastReconcile)
	}
	t.Fatalf("timed out waiting for %s; last status: %+v", what, st)
	return nil
}

func statusOf(st *api.Status, plug, inst string) *api.InstanceStatus {
	for i := range st.Instances {
		if st.Instances[i].Plug == plug && st.Instances[i].Instance == inst {
			return &st.Instances[i]
		}
	}
	return nil
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

func TestGitOps(t *testing.T) {
	repo := gittest.NewRepo(t)
	files := map[string]string{"deploy/plugs.hcl": sleeperDeployment(map[string]string{"a": "5s", "b": "5s"})}
	for k, v := range sleeperPlugin {
		files["deploy/"+k] = v
	}
	first := repo.Commit(files)
	url := gittest.Daemon(t, repo.Root) + "/repo"

	stateDir := t.TempDir()
	c := startDaemon(t, Options{StateDir: stateDir, Repo: url, Ref: "main", Path: "deploy/plugs.hcl", Interval: 100 * time.Millisecond})
	st := waitStatus(t, c, "a/default and b/default running", func(s *api.Status) bool {
		a, b := statusOf(s, "a", "default"), statusOf(s, "b", "default")
		return a != nil && a.PID > 0 && b != nil && b.PID > 0
	})
	if st.Daemon.Mode != ModeGitOps || st.Daemon.ConfigRevision != first || st.Daemon.LastReconcile.Error != "" {
		t.Fatalf("after the first commit: %+v", st.Daemon)
	}
	pidA, pidB := statusOf(st, "a", "default").PID, statusOf(st, "b", "default").PID

	// A broken commit: nothing changes, and status names the commit.
	broken := repo.Commit(map[string]string{"deploy/plugs.hcl": "plug \"a\" {\n  source = \"./plugins/sleeper\"\n  bogus = 1\n}\n"})
	_, err := c.Apply(context.Background())
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Kind != api.KindInput || !strings.Contains(apiErr.Message, "Unsupported argument") {
		t.Fatalf("apply of a broken commit: %v, want the diagnostic", err)
	}
	st, err = c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Daemon.LastReconcile; r.Revision != broken || len(r.Diagnostics) == 0 || !strings.Contains(r.Diagnostics[0].Detail, "bogus") ||
		r.Diagnostics[0].Snippet == nil || !strings.Contains(r.Diagnostics[0].Snippet.Code, "bogus = 1") {
		t.Errorf("last reconcile = %+v, want the broken commit %s and its diagnostic", r, broken)
	}
	if st.Daemon.ConfigRevision != first {
		t.Errorf("config revision = %s, want the last good %s", st.Daemon.ConfigRevision, first)
	}
	if statusOf(st, "a", "default").PID != pidA || statusOf(st, "b", "default").PID != pidB {
		t.Errorf("a broken commit changed pids: %+v", st.Instances)
	}

	// A fix, found by the interval poll: only the changed plug is replaced.
	fixed := repo.Commit(map[string]string{"deploy/plugs.hcl": sleeperDeployment(map[string]string{"a": "5s", "b": "10s"})})
	st = waitStatus(t, c, "the fix", func(s *api.Status) bool {
		b := statusOf(s, "b", "default")
		return s.Daemon.ConfigRevision == fixed && b != nil && b.PID > 0 && b.PID != pidB
	})
	if r := st.Daemon.LastReconcile; r.Error != "" {
		t.Errorf("after the fix: %+v", r)
	}
	if got := statusOf(st, "a", "default").PID; got != pidA {
		t.Errorf("a was replaced (pid %d -> %d) though its config did not change", pidA, got)
	}
	if alive(pidB) {
		t.Errorf("the replaced b (pid %d) still runs", pidB)
	}
}

func TestRunStopsEverything(t *testing.T) {
	dir := t.TempDir()
	for name, content := range sleeperPlugin {
		writeFile(t, dir+"/"+name, content)
	}
	writeFile(t, dir+"/plugs.hcl", sleeperDeployment(map[string]string{"a": "1s", "b": "2s"}))
	stateDir := dir + "/.plugs"

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	errc := make(chan error, 1)
	opts := Options{File: dir + "/plugs.hcl", StateDir: stateDir, MetricsAddr: "127.0.0.1:0", BrokerAddr: "127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler), Ready: func() { close(ready) }}
	go func() { errc <- Run(ctx, opts) }()
	<-ready

	// A second daemon on the same state dir is refused.
	err := Run(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "another plugs daemon") {
		t.Errorf("second daemon: %v", err)
	}
	c, err := api.Dial(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	st := waitStatus(t, c, "two instances", func(s *api.Status) bool {
		return len(s.Instances) == 2 && s.Instances[0].PID > 0 && s.Instances[1].PID > 0
	})
	c.Close()
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, i := range st.Instances {
		if alive(i.PID) {
			t.Errorf("%s/%s (pid %d) outlived the daemon", i.Plug, i.Instance, i.PID)
		}
	}
	if _, err := os.Stat(api.SocketPath(stateDir)); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(path[:strings.LastIndexByte(path, '/')], 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
