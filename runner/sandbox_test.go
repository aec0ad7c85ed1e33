package runner

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/testplugin"
	"github.com/plugs-dev/plugs/sandbox"
)

// sandboxRunner is a Runner with a real sandbox on a state directory that
// unprivileged users may traverse, and a copy of the test binary they may
// run (the go build cache is private to root).
func sandboxRunner(t *testing.T) (*Runner, *statuses, *sandbox.Sandbox, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the sandbox tests need root (cgroups, a user switch)")
	}
	state, err := os.MkdirTemp("", "runner-sandbox-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	plugin := filepath.Join(state, "plugin")
	if err := os.Chmod(state, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(plugin, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := testplugin.CopySelf(t, plugin, "fake")
	sb, err := sandbox.New(sandbox.Options{StateDir: state, Users: &sandbox.Users{Prefix: "plugsrt-"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("sandbox close: %v", err)
		}
	})
	for _, l := range sb.Status() {
		t.Log(l)
	}
	r, sts := newTestRunner(t, Options{StateDir: filepath.Join(state, "state"), Sandbox: sb})
	return r, sts, sb, fake
}

func sandboxSpec(fake, plug, mode string, args ...string) instance.Spec {
	s := fakeSpec(plug, "default", "", args...)
	s.Dir, s.Command[0] = filepath.Dir(fake), fake
	s.Env = map[string]string{testplugin.Env: mode, "GORACE": "atexit_sleep_ms=0"}
	s.User = "root"
	s.StopTimeout = 2 * time.Second
	return s
}

func outputOf(r *Runner, id instance.ID) string {
	b, _ := os.ReadFile(filepath.Join(InstanceDir(r.opts.StateDir, id), "output.log"))
	return string(b)
}

func needController(t *testing.T, sb *sandbox.Sandbox, c string) {
	t.Helper()
	for _, l := range sb.Status() {
		if strings.HasPrefix(l, "cgroups ") && strings.Contains(l, c) {
			return
		}
	}
	t.Skipf("no %s cgroup controller here: %v", c, sb.Status())
}

func TestSandboxOOMKilledAndRestarted(t *testing.T) {
	r, sts, sb, fake := sandboxRunner(t)
	needController(t, sb, "memory")
	s := sandboxSpec(fake, "hog", "hog")
	s.Limits.Memory = 48 << 20
	s.Restart = instance.RestartPolicy{InitialDelay: time.Hour, MaxDelay: time.Hour, ResetAfter: time.Hour}
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	st := sts.await(t, s.ID, "oom-killed and restarted", func(st instance.Status) bool {
		return st.Restarts >= 1 && st.LastExit != nil
	})
	if !st.LastExit.OOMKilled || st.LastExit.Signal != "SIGKILL" {
		t.Errorf("last exit %+v, want oom-killed by SIGKILL", st.LastExit)
	}
	f, err := ReadInstanceFile(filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "instance.json"))
	if err != nil || f.LastExit == nil || !f.LastExit.OOMKilled {
		t.Errorf("instance.json last exit: %+v, %v", f, err)
	}
	if cpu, mem, ok := r.Usage(s.ID); !ok || mem == 0 && cpu == 0 {
		t.Errorf("cgroup usage: %v %d %v", cpu, mem, ok)
	}
}

func TestSandboxStopKillsSetsidGrandchild(t *testing.T) {
	r, sts, _, fake := sandboxRunner(t)
	pidFile := filepath.Join(t.TempDir(), "gc.pid")
	s := sandboxSpec(fake, "gc", "setsid", pidFile)
	s.Permissions = []string{"filesystem.write:" + filepath.Dir(pidFile)}
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	pid := sts.await(t, s.ID, "running", running).PID
	var gc int
	eventually(t, "grandchild started", func() bool {
		b, _ := os.ReadFile(pidFile)
		gc, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return gc > 0
	})
	if st, err := readProcStat(gc); err != nil || st.PGRP == pid {
		t.Fatalf("grandchild %d: pgrp %d (%v): it did not leave the group of %d", gc, st.PGRP, err, pid)
	}
	if err := r.Stop(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "setsid'd grandchild gone", func() bool { return gone(gc) })
}

func TestSandboxForkBombContained(t *testing.T) {
	r, sts, sb, fake := sandboxRunner(t)
	needController(t, sb, "pids")
	other := sandboxSpec(fake, "calm", "id", "sleep")
	bomb := sandboxSpec(fake, "bomb", "forkbomb")
	bomb.Limits.PIDs = 16
	for _, s := range []instance.Spec{other, bomb} {
		if err := r.Start(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "fork bomb refused", func() bool { return strings.Contains(outputOf(r, bomb.ID), "forked ") })
	var n int
	fmt.Sscanf(outputOf(r, bomb.ID), "forked %d", &n)
	if n >= 16 {
		t.Errorf("forked %d with pids = 16", n)
	}
	st := sts.await(t, other.ID, "running", running)
	if err := r.Stop(t.Context(), bomb.ID); err != nil {
		t.Fatal(err)
	}
	if now := sts.await(t, other.ID, "running", running); now.PID != st.PID {
		t.Errorf("the other instance changed pid: %d -> %d", st.PID, now.PID)
	}
}

func TestSandboxDefaultUserAndPermissions(t *testing.T) {
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("no useradd")
	}
	users := &sandbox.Users{Prefix: "plugsrt-"}
	name := users.UserName("who")
	// Registered first, so it runs last: after the runner stopped every
	// process of the user.
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	})
	r, sts, _, fake := sandboxRunner(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	other, _ := os.MkdirTemp("", "runner-sandbox-other-")
	defer os.RemoveAll(other)
	os.Chmod(other, 0o777)
	s := sandboxSpec(fake, "who", "id", "sleep")
	s.User = "" // a root daemon: the plug's own user
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	sts.await(t, s.ID, "running", running)
	eventually(t, "id printed", func() bool { return strings.Contains(outputOf(r, s.ID), "id ") })
	var uid, gid int
	fmt.Sscanf(outputOf(r, s.ID), "id %d %d", &uid, &gid)
	if uid == 0 || gid == 0 {
		t.Errorf("runs as %d:%d, want the unprivileged %s", uid, gid, name)
	}
	if err := r.Stop(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}

	// The same user: its instance dir is writable, another folder (even
	// mode 0777) and another port are not.
	p := sandboxSpec(fake, "who", "probe", filepath.Join(other, "x"), l.Addr().String())
	p.User = ""
	if err := r.Start(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	eventually(t, "probe printed", func() bool { return strings.Contains(outputOf(r, p.ID), "connect ") })
	out := outputOf(r, p.ID)
	if !strings.Contains(out, "write EACCES") {
		t.Errorf("write outside its permissions: %q", out)
	}
	if sandbox.LandlockABI() >= 4 && !strings.Contains(out, "connect EACCES") {
		t.Errorf("connect without a network permission: %q", out)
	}
}

func TestSandboxShimFailureIsReported(t *testing.T) {
	r, sts, _, fake := sandboxRunner(t)
	s := sandboxSpec(fake, "bad", "id", "sleep")
	s.Groups = []string{"no-such-group-plugs"}
	err := r.Start(t.Context(), s)
	if err == nil || !strings.Contains(err.Error(), "no-such-group-plugs") {
		t.Fatalf("Start = %v, want the missing group named", err)
	}
	st := sts.await(t, s.ID, "failed", func(st instance.Status) bool { return st.State == instance.StateFailed })
	if !strings.Contains(st.Reason, "sandbox") {
		t.Errorf("reason %q", st.Reason)
	}
}
