package runner

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/testplugin"
	"github.com/plugs-dev/plugs/sandbox"
)

// The one-shot runs of a sandboxed instance (tasks, exec checks, hooks)
// are as confined as its process: hostile runs, on a real sandbox.

// runOnceMode runs the fake plugin of s in mode through r.RunOnce.
func runOnceMode(t *testing.T, r *Runner, s instance.Spec, o Once, mode string, args ...string) Result {
	t.Helper()
	o.Spec = s
	o.Command = append([]string{s.Command[0]}, args...)
	if o.Env == nil {
		o.Env = map[string]string{}
	}
	o.Env[testplugin.Env] = mode
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	res, err := r.RunOnce(t.Context(), o)
	if err != nil {
		t.Fatalf("RunOnce %s: %v", mode, err)
	}
	t.Logf("%s: exit %d signal %q timed out %v oom-killed %v after %s\nstdout: %s\nstderr: %s",
		mode, res.ExitCode, res.Signal, res.TimedOut, res.OOMKilled, res.Duration, res.Stdout, res.Stderr)
	return res
}

// TestSandboxRunOnceConfined: a run of a plug without a user, under a root
// daemon, runs as the plug's unprivileged user (not root), may write its
// instance directory but not a folder of mode 0777 outside it, may not
// connect to another port, reads its config.json and PLUGS_INPUT, and is
// in a cgroup of its own beside the instance's.
func TestSandboxRunOnceConfined(t *testing.T) {
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("no useradd")
	}
	users := &sandbox.Users{Prefix: "plugsrt-"}
	name := users.UserName("job")
	// Registered first, so it runs last: after the runner ended every run.
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	})
	r, _, _, fake := sandboxRunner(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other, err := os.MkdirTemp("", "runner-sandbox-other-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(other)
	if err := os.Chmod(other, 0o777); err != nil {
		t.Fatal(err)
	}
	input := filepath.Join(t.TempDir(), "input") // root's, mode 0600
	if err := os.WriteFile(input, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := sandboxSpec(fake, "job", "sleep")
	s.User = "" // a root daemon: the plug's own user

	outside := filepath.Join(other, "outside")
	res := runOnceMode(t, r, s, Once{Env: map[string]string{"PLUGS_INPUT": input}}, "confined", outside, l.Addr().String())
	if res.Err() != nil {
		t.Fatalf("run failed: %v", res.Err())
	}
	out := string(res.Stdout)
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("the plug's user: %v", err)
	}
	if !strings.Contains(out, "id "+u.Uid+"\n") || u.Uid == "0" {
		t.Errorf("runs as %q, want %s (uid %s)", out, name, u.Uid)
	}
	for _, want := range []string{"write EACCES\n", "tmp ok\n", "config ok\n", "input ok hello\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if _, err := os.Stat(outside); err == nil {
		t.Errorf("%s written", outside)
	}
	if sandbox.LandlockABI() >= 4 && !strings.Contains(out, "connect EACCES\n") {
		t.Errorf("connected to %s without a network permission", l.Addr())
	}
	// Its cgroup is its own: <plug>/<instance>@<run>, never the instance's.
	if !strings.Contains(out, "/job/default@") {
		t.Errorf("not in a cgroup of its own: %q", out)
	}
	if _, err := os.Stat(input); err != nil {
		t.Errorf("the caller's input file: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(InstanceDir(r.opts.StateDir, s.ID), ".input-*")); len(left) > 0 {
		t.Errorf("input copies left: %v", left)
	}
}

// TestSandboxRunOncePidsLimit: a run's fork loop stops at its spec's pids
// limit, and nothing it forked outlives it.
func TestSandboxRunOncePidsLimit(t *testing.T) {
	r, _, sb, fake := sandboxRunner(t)
	needController(t, sb, "pids")
	s := sandboxSpec(fake, "forker", "sleep")
	s.Limits.PIDs = 20
	res := runOnceMode(t, r, s, Once{}, "forkn", "60")
	var n int
	var why string
	if _, err := fmt.Sscanf(string(res.Stdout), "forked %d %s", &n, &why); err != nil {
		t.Fatalf("output %q: %v", res.Stdout, err)
	}
	if n >= 20 || why != "EAGAIN" {
		t.Errorf("forked %d (%s) with pids = 20", n, why)
	}
}

// TestSandboxRunOnceMemoryLimit: a run past its spec's memory limit is
// killed by the kernel, and the Result says so.
func TestSandboxRunOnceMemoryLimit(t *testing.T) {
	r, _, sb, fake := sandboxRunner(t)
	needController(t, sb, "memory")
	s := sandboxSpec(fake, "greedy", "sleep")
	s.Limits.Memory = 64 << 20
	// Holds 150 MiB, then sleeps: unconfined, it would time out instead.
	res := runOnceMode(t, r, s, Once{Timeout: 10 * time.Second}, "hold", "150")
	if !res.OOMKilled || res.Signal != "SIGKILL" || res.TimedOut {
		t.Fatalf("oom-killed %v, signal %q, timed out %v: want oom-killed by SIGKILL", res.OOMKilled, res.Signal, res.TimedOut)
	}
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "oom-killed") {
		t.Errorf("Err() = %v, want oom-killed named", err)
	}
}

// TestSandboxRunOnceSparesService: a run (an exec check) while the plug's
// instance runs leaves a grandchild that left its session and cleared its
// environment, so that only the run's cgroup still holds it: the run's end
// kills it, and the instance's process runs on, in its own cgroup.
func TestSandboxRunOnceSparesService(t *testing.T) {
	r, sts, _, fake := sandboxRunner(t)
	s := sandboxSpec(fake, "svc", "sleep")
	pidDir := t.TempDir()
	s.Permissions = []string{"filesystem.write:" + pidDir}
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	before := sts.await(t, s.ID, "running", running)

	pidFile := filepath.Join(pidDir, "escaped.pid")
	res := runOnceMode(t, r, s, Once{}, "escape", pidFile)
	if res.Err() != nil {
		t.Fatalf("run failed: %v", res.Err())
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	gc, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if gc <= 0 {
		t.Fatalf("pid file %q", b)
	}
	t.Cleanup(func() { _ = syscall.Kill(gc, syscall.SIGKILL) }) // without a cgroup it escapes
	if !gone(gc) {
		t.Errorf("the run's escaped grandchild %d is still alive after the run", gc)
	}

	now := sts.await(t, s.ID, "running", running)
	if now.PID != before.PID || gone(before.PID) {
		t.Fatalf("the instance's process %d did not survive the run (now pid %d, %d restarts)", before.PID, now.PID, now.Restarts)
	}
	own, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", before.PID))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(own), "/svc/default\n") {
		t.Errorf("the instance's process is not in its cgroup: %s", own)
	}
	if err := r.Stop(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
}
