package sandbox

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/plugs-dev/plugs/internal/testplugin"
	"github.com/plugs-dev/plugs/sandbox/perms"
)

// env is one sandbox test setup: a Sandbox, a plugin copy of the test
// binary and an instance directory.
type env struct {
	sb          *Sandbox
	dir, path   string
	instanceDir string
	users       []string
}

func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	e := &env{}
	e.dir, e.path = plugin(t)
	state, err := os.MkdirTemp("", "sandbox-state-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	os.Chmod(state, 0o755)
	e.instanceDir = filepath.Join(state, "instances", "p", "i")
	if err := os.MkdirAll(e.instanceDir, 0o700); err != nil {
		t.Fatal(err)
	}
	opts.StateDir = state
	if opts.Users == nil {
		opts.Users = &Users{Prefix: "plugst-"}
	}
	e.sb, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.sb.Close(); err != nil {
			t.Error(err)
		}
	})
	return e
}

func (e *env) request(mode string, args ...string) Request {
	return Request{
		Plug: "p", Instance: "i", Dir: e.dir, InstanceDir: e.instanceDir,
		Path: e.path, Argv: append([]string{e.path}, args...),
		Env:  []string{testplugin.Env + "=" + mode, "PATH=/usr/bin:/bin"},
		User: "root",
	}
}

// start forks the prepared request the way the runner does and returns
// the running command and its output.
func (e *env) start(t *testing.T, req Request) (*exec.Cmd, *bufio.Reader, *Start) {
	t.Helper()
	st, err := e.sb.Prepare(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.sb.Release(req.Plug, req.Instance); err != nil {
			t.Error(err)
		}
	})
	cmd := &exec.Cmd{Path: st.Path, Args: st.Argv, Env: st.Env, Dir: req.Dir, ExtraFiles: st.Files,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true}}
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := st.Started(cmd.Start()); err != nil {
		_ = cmd.Wait()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })
	return cmd, bufio.NewReader(out), st
}

// run starts req and returns its whole output once it exits.
func (e *env) run(t *testing.T, req Request) []string {
	t.Helper()
	cmd, out, _ := e.start(t, req)
	var b strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	_ = cmd.Wait()
	return lines(b.String())
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (a user switch, cgroups)")
	}
}

func needLandlock(t *testing.T, abi int) {
	t.Helper()
	if v := LandlockABI(); v < abi {
		t.Skipf("Landlock ABI %d on this kernel, the test needs %d", v, abi)
	}
}

func TestFilesystem(t *testing.T) {
	needLandlock(t, 1)
	e := newEnv(t, Options{NoCgroups: true})
	granted, _ := os.MkdirTemp("", "sandbox-granted-")
	other, _ := os.MkdirTemp("", "sandbox-other-")
	t.Cleanup(func() { os.RemoveAll(granted); os.RemoveAll(other) })
	req := e.request("write", filepath.Join(e.instanceDir, "state"), filepath.Join(other, "x"), filepath.Join(granted, "y"), filepath.Join(e.dir, "z"))
	req.Permissions = []string{"filesystem.write:" + granted}
	got := e.run(t, req)
	want := []string{
		filepath.Join(e.instanceDir, "state") + " ok",
		filepath.Join(other, "x") + " EACCES",
		filepath.Join(granted, "y") + " ok",
		filepath.Join(e.dir, "z") + " EACCES", // the plugin tree is read-only, even for root
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("writes (-want +got):\n%s", d)
	}

	// sandbox { enabled = false } lifts it.
	req.NoLandlock = true
	if got := e.run(t, req); got[1] != filepath.Join(other, "x")+" ok" {
		t.Errorf("without Landlock: %v", got)
	}
}

// TestPolicyInTheEnvironmentIgnored: a policy that comes in the plugin's
// environment (a plug's env naming PLUGS_SANDBOX_POLICY, one inherited)
// confines nothing instead of the sandbox's: the write outside stays
// refused.
func TestPolicyInTheEnvironmentIgnored(t *testing.T) {
	needLandlock(t, 1)
	e := newEnv(t, Options{NoCgroups: true})
	other, _ := os.MkdirTemp("", "sandbox-other-")
	t.Cleanup(func() { os.RemoveAll(other) })
	req := e.request("write", filepath.Join(other, "x"))
	req.Env = append([]string{policyEnv + `={"landlock":false}`}, req.Env...)
	st, err := e.sb.Prepare(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.sb.Release(req.Plug, req.Instance) })
	// Forked as the runner forks (os.StartProcess): unlike exec.Cmd, it
	// passes duplicate variables on as they are.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	files := append([]*os.File{nil, pw, os.Stderr}, st.Files...)
	p, err := os.StartProcess(st.Path, st.Argv, &os.ProcAttr{Dir: req.Dir, Env: st.Env, Files: files})
	pw.Close()
	if err := st.Started(err); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(pr)
	pr.Close()
	_, _ = p.Wait()
	if got := lines(string(out)); len(got) != 1 || got[0] != filepath.Join(other, "x")+" EACCES" {
		t.Errorf("with a policy in the plugin's environment, the write outside: %v, want EACCES", got)
	}
}

// listener accepts and closes connections until the test ends.
func listener(t *testing.T) (*net.TCPListener, uint16) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.(*net.TCPListener), uint16(l.Addr().(*net.TCPAddr).Port)
}

func TestNetwork(t *testing.T) {
	needLandlock(t, 4)
	e := newEnv(t, Options{NoCgroups: true})
	_, broker := listener(t)
	_, other := listener(t)
	addr := func(p uint16) string { return "127.0.0.1:" + strconv.Itoa(int(p)) }

	req := e.request("connect", addr(broker), addr(other))
	req.BrokerPort = broker
	if d := cmp.Diff([]string{addr(broker) + " ok", addr(other) + " EACCES"}, e.run(t, req)); d != "" {
		t.Errorf("no network permission (-want +got):\n%s", d)
	}
	req.Permissions = []string{fmt.Sprintf("network.tcp:%d", other)}
	if d := cmp.Diff([]string{addr(broker) + " ok", addr(other) + " ok"}, e.run(t, req)); d != "" {
		t.Errorf("network.tcp (-want +got):\n%s", d)
	}
	req.Permissions = []string{"network"}
	req.BrokerPort = 0
	if d := cmp.Diff([]string{addr(broker) + " ok", addr(other) + " ok"}, e.run(t, req)); d != "" {
		t.Errorf("network (-want +got):\n%s", d)
	}

	// Listening needs network.tcp:PORT too.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	free := l.Addr().(*net.TCPAddr).Port
	l.Close()
	req = e.request("listen", fmt.Sprintf("127.0.0.1:%d", free))
	if got := e.run(t, req); len(got) != 1 || !strings.HasSuffix(got[0], "EACCES") {
		t.Errorf("listen without permission: %v", got)
	}
	req.Permissions = []string{fmt.Sprintf("network.tcp:%d", free)}
	if got := e.run(t, req); len(got) != 1 || !strings.HasSuffix(got[0], " ok") {
		t.Errorf("listen with permission: %v", got)
	}
}

// userdel removes the users a test created.
func userdel(t *testing.T, names ...string) {
	t.Cleanup(func() {
		for _, n := range names {
			if out, err := exec.Command("userdel", n).CombinedOutput(); err != nil && !strings.Contains(string(out), "does not exist") {
				t.Errorf("userdel %s: %v: %s", n, err, out)
			}
		}
	})
}

func TestUnprivilegedUser(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("no useradd")
	}
	e := newEnv(t, Options{NoCgroups: true})
	name := e.sb.users.UserName("p")
	userdel(t, name)
	req := e.request("id")
	req.User = "" // under a root daemon: the plug's own unprivileged user
	got := e.run(t, req)
	c, err := lookupUser(name)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("id %d %d []", c.UID, c.GID); len(got) != 1 || got[0] != want {
		t.Errorf("id = %v, want %q", got, want)
	}
	if c.UID == 0 {
		t.Fatal("runs as root")
	}
	fi, _ := os.Stat(e.instanceDir)
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != c.UID {
		t.Errorf("instance dir owned by %d, want %d", st.Uid, c.UID)
	}
	// It can write its instance dir, nothing else.
	req = e.request("write", filepath.Join(e.instanceDir, "data"), "/tmp/sandbox-user-test")
	req.User = ""
	if d := cmp.Diff([]string{filepath.Join(e.instanceDir, "data") + " ok", "/tmp/sandbox-user-test EACCES"}, e.run(t, req)); d != "" {
		t.Errorf("writes as the plug's user (-want +got):\n%s", d)
	}
	// The plug's setup folder, where its setup program (root) saved what
	// the plugin reads (PLUGS_SETUP_DIR): its to read and update.
	setup := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(e.instanceDir))), "setup", "p")
	if err := os.MkdirAll(setup, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(setup, "model.bin"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	req = e.request("write", filepath.Join(setup, "model.bin"), filepath.Join(setup, "new"))
	req.User, req.SetupDir = "", setup
	if d := cmp.Diff([]string{filepath.Join(setup, "model.bin") + " ok", filepath.Join(setup, "new") + " ok"}, e.run(t, req)); d != "" {
		t.Errorf("the setup folder as the plug's user (-want +got):\n%s", d)
	}
	// Supplementary groups only as asked.
	if _, err := lookupGroup("dialout"); err == nil {
		gid, _ := lookupGroup("dialout")
		req = e.request("id")
		req.User, req.Groups = "", []string{"dialout"}
		if got := e.run(t, req); len(got) != 1 || !strings.HasSuffix(got[0], fmt.Sprintf("[%d]", gid)) {
			t.Errorf("with dialout: %v", got)
		}
	}
	// The user is created once and kept.
	if c2, err := e.sb.users.Ensure("p"); err != nil || c2 != c {
		t.Errorf("second Ensure = %+v, %v", c2, err)
	}
}

func withCgroups(t *testing.T, e *env, controller string) {
	t.Helper()
	if e.sb.cg == nil {
		t.Skipf("no cgroups: %s", e.sb.cgErr)
	}
	if controller != "" && !slices.Contains(e.sb.cg.Controllers(), controller) {
		t.Skipf("no %s controller: %s", controller, e.sb.cg.Note())
	}
}

func TestMemoryLimitOOMKilled(t *testing.T) {
	needRoot(t)
	e := newEnv(t, Options{})
	withCgroups(t, e, "memory")
	req := e.request("hog")
	req.Limits.Memory = 48 << 20
	cmd, out, st := e.start(t, req)
	rest, _ := out.ReadString(0)
	err := cmd.Wait()
	ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("hog exited with %v (output %q), want SIGKILL", err, rest)
	}
	if !st.OOMKilled() {
		t.Error("OOMKilled = false after a kill at the memory limit")
	}
}

func TestForkBombContained(t *testing.T) {
	needRoot(t)
	e := newEnv(t, Options{})
	withCgroups(t, e, "pids")
	sleeper := e.request("ready")
	sleeper.Instance = "other"
	_, sout, _ := e.start(t, sleeper)
	if l, _ := sout.ReadString('\n'); l != "ready\n" {
		t.Fatalf("sleeper: %q", l)
	}
	req := e.request("forkbomb")
	req.Limits.PIDs = 16
	cmd, out, st := e.start(t, req)
	line, _ := out.ReadString('\n')
	if f := strings.Fields(line); len(f) != 3 || f[0] != "forked" || f[2] == "none" {
		t.Fatalf("fork bomb: %q, want it refused", line)
	}
	if n, _ := strconv.Atoi(strings.Fields(line)[1]); n >= 16 {
		t.Errorf("forked %d children with pids = 16", n)
	}
	if n := len(st.Group.Pids()); n > 16 {
		t.Errorf("%d processes in the group", n)
	}
	// The other instance keeps running, and a kill of the group ends the bomb.
	if err := st.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if n := len(liveIn(st.Group)); n != 0 {
		t.Errorf("%d left after kill", n)
	}
	e.mustBeAlive(t, sleeper)
}

func (e *env) mustBeAlive(t *testing.T, req Request) {
	t.Helper()
	e.sb.mu.Lock()
	g := e.sb.groups[req.Plug+"/"+req.Instance]
	e.sb.mu.Unlock()
	if g == nil || len(g.Pids()) == 0 {
		t.Errorf("%s/%s is not running", req.Plug, req.Instance)
	}
}

func TestGrandchildDiesWithGroup(t *testing.T) {
	needRoot(t)
	e := newEnv(t, Options{})
	withCgroups(t, e, "")
	cmd, out, st := e.start(t, e.request("setsid", "-"))
	line, _ := out.ReadString('\n')
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("grandchild: %q", line)
	}
	pgid, _ := syscall.Getpgid(pid)
	if pgid == cmd.Process.Pid {
		t.Fatal("the grandchild did not leave the process group")
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what the runner does at stop
	_ = cmd.Wait()
	if !alive(pid) {
		t.Fatal("the grandchild died with its process group: the test proves nothing")
	}
	if err := st.Kill(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(pid) {
		t.Error("the setsid'd grandchild survived the cgroup kill")
	}
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

func TestShimError(t *testing.T) {
	e := newEnv(t, Options{NoCgroups: true})
	req := e.request("id")
	req.Path = filepath.Join(e.dir, "missing")
	st, err := e.sb.Prepare(req)
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: st.Path, Args: st.Argv, Env: st.Env, ExtraFiles: st.Files}
	err = st.Started(cmd.Start())
	_ = cmd.Wait()
	if err == nil || !strings.Contains(err.Error(), "sandbox: ") || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Started = %v, want the shim's error naming the path", err)
	}
}

func TestUserName(t *testing.T) {
	u := &Users{}
	for plug, want := range map[string]string{
		"heart-rate":            "plugs-heart-rate",
		"Heart.Rate":            "plugs-heart-rate-",
		strings.Repeat("a", 40): "plugs-aaaaaaaaaaaaaaaaa-",
	} {
		got := u.UserName(plug)
		if !strings.HasPrefix(got, want) || len(got) > 32 {
			t.Errorf("UserName(%q) = %q, want prefix %q, at most 32", plug, got, want)
		}
	}
	if u.UserName("Heart.Rate") == u.UserName("heart-rate") {
		t.Error("two plug names share a user")
	}
}

func TestDescribe(t *testing.T) {
	g, _ := perms.Parse([]string{"filesystem.read:/data", "network.tcp:8080"})
	got := strings.Join(Describe(false, g, Limits{Memory: 256 << 20, CPU: 0.5, PIDs: 64}), "; ")
	want := "read plugin + system, write instance dir, read /data; network: broker, connect tcp 8080, listen tcp 8080; memory 256MiB, cpu 0.5, pids 64"
	if got != want {
		t.Errorf("Describe =\n%s\nwant\n%s", got, want)
	}
}

func liveIn(g interface{ Pids() []int }) []int {
	var out []int
	for _, p := range g.Pids() {
		if alive(p) {
			out = append(out, p)
		}
	}
	return out
}
