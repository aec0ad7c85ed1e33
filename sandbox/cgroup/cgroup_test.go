package cgroup

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("cgroup tests need root")
	}
}

// startJoined starts a shell that joins g, then (once told) forks a child
// and a setsid'd grandchild that leaves its process group.
func startJoined(t *testing.T, g *Group) (*exec.Cmd, []int) {
	t.Helper()
	cmd := exec.Command("sh", "-c", `read x; sleep 300 & setsid sh -c 'sleep 300 & echo $!; wait' & echo $!; wait`)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for _, f := range g.ProcsFiles() {
		if err := os.WriteFile(f, []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Fprintln(stdin, "go")
	buf := make([]byte, 64)
	var out string
	for i := 0; i < 50 && strings.Count(out, "\n") < 2; i++ {
		n, err := stdout.Read(buf)
		out += string(buf[:n])
		if err == io.EOF {
			break
		}
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		n, _ := strconv.Atoi(f)
		pids = append(pids, n)
	}
	if len(pids) != 2 {
		t.Fatalf("children: %q", out)
	}
	return cmd, pids
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

func checkKill(t *testing.T, r *Root) {
	g, err := r.Group("plug-a", "inst-1", Limits{Memory: 64 << 20, PIDs: 16, CPU: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Remove(); err != nil {
			t.Error(err)
		}
	})
	cmd, kids := startJoined(t, g)
	// The grandchild's sleep has a session of its own.
	if got := g.Pids(); len(got) < 4 {
		t.Fatalf("pids in group: %v", got)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for _, pid := range kids {
		for i := 0; i < 100 && alive(pid); i++ {
			time.Sleep(10 * time.Millisecond) // reaped by init
		}
		if alive(pid) {
			t.Errorf("pid %d survived the cgroup kill", pid)
		}
	}
	if got := g.livePids(); len(got) != 0 {
		t.Errorf("live after kill: %v", got)
	}
}

func TestOpenAndKill(t *testing.T) {
	needRoot(t)
	r, err := Open(fmt.Sprintf("plugs-test-%d", os.Getpid()))
	if err != nil {
		t.Skipf("no cgroups here: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Remove(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("mode %s, controllers %v, note %q, dir %s", r.Mode(), r.Controllers(), r.Note(), r.Dir())
	checkKill(t, r)
}

func TestV1Limits(t *testing.T) {
	needRoot(t)
	r, err := Open(fmt.Sprintf("plugs-test-%d", os.Getpid()))
	if err != nil || r.Mode() != V1 {
		t.Skip("this host does not use cgroup v1 controllers")
	}
	t.Cleanup(func() { _ = r.Remove() })
	g, err := r.Group("p", "i", Limits{Memory: 64 << 20, PIDs: 16, CPU: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Remove() })
	for file, want := range map[string]string{
		"memory/memory.limit_in_bytes": "67108864", "pids/pids.max": "16", "cpu/cpu.cfs_quota_us": "50000",
	} {
		c, name, _ := strings.Cut(file, "/")
		if !slices.Contains(r.Controllers(), c) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(g.dirs[c], name))
		if err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s = %q (%v), want %s", file, b, err, want)
		}
	}
	// A limit removed on the next start goes back to unlimited.
	if _, err := r.Group("p", "i", Limits{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(g.dirs["pids"], "pids.max")); strings.TrimSpace(string(b)) != "max" {
		t.Errorf("pids.max after reset = %q", b)
	}
}

// TestV2 runs on the v2 hierarchy wherever one is mounted (on a hybrid host
// the unified mount, which may offer no controller: kill and membership
// are still tested, limits are skipped with a message).
func TestV2(t *testing.T) {
	needRoot(t)
	mounts, _ := readMounts("/proc/self/mountinfo")
	own, _ := readOwn("/proc/self/cgroup")
	var dir string
	for _, m := range mounts {
		if m.v2 {
			dir = filepath.Join(m.dir, strings.TrimPrefix(own[""], m.root))
		}
	}
	if dir == "" {
		t.Skip("no cgroup v2 mount")
	}
	r, err := OpenV2(dir, fmt.Sprintf("plugs-test-%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Remove(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("v2 at %s: controllers %v, note %q", r.Dir(), r.Controllers(), r.Note())
	checkKill(t, r)
	if !slices.Contains(r.Controllers(), "memory") {
		t.Skipf("v2 limits not tested: %s", r.Note())
	}
	g, err := r.Group("p", "i", Limits{Memory: 64 << 20, PIDs: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	if b, _ := os.ReadFile(filepath.Join(g.dirs[""], "memory.max")); strings.TrimSpace(string(b)) != "67108864" {
		t.Errorf("memory.max = %q", b)
	}
}

func TestReadOwnAndMounts(t *testing.T) {
	dir := t.TempDir()
	cg := filepath.Join(dir, "cgroup")
	os.WriteFile(cg, []byte("12:pids:/a\n4:memory:/x/y\n2:cpu,cpuacct:/c\n0::/u\n"), 0o644)
	own, err := readOwn(cg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"pids": "/a", "memory": "/x/y", "cpu": "/c", "cpuacct": "/c", "": "/u"}
	for k, v := range want {
		if own[k] != v {
			t.Errorf("own[%q] = %q, want %q", k, own[k], v)
		}
	}
	mi := filepath.Join(dir, "mountinfo")
	os.WriteFile(mi, []byte("30 24 0:26 / /sys/fs/cgroup/memory rw,relatime shared:11 - cgroup cgroup rw,memory\n31 24 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"), 0o644)
	ms, err := readMounts(mi)
	if err != nil || len(ms) != 2 || !ms[1].v2 || !slices.Contains(ms[0].opts, "memory") {
		t.Fatalf("mounts %+v, %v", ms, err)
	}
}

// TestRemoveMatchingSweepsLeftRuns: the groups a killed daemon's runs
// left (instance@key), with a setsid'd process still in one, are killed
// and removed; an instance's group is left alone.
func TestRemoveMatchingSweepsLeftRuns(t *testing.T) {
	needRoot(t)
	r, err := Open(fmt.Sprintf("plugs-test-sweep-%d", os.Getpid()))
	if err != nil {
		t.Skipf("no cgroups here: %v", err)
	}
	t.Cleanup(func() { _ = r.Remove() })
	svc, err := r.Group("plug-a", "inst-1", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Remove() })
	run, err := r.Group("plug-a", "inst-1@k1", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	cmd, kids := startJoined(t, run)
	n, err := r.RemoveMatching(func(_, instance string) bool { return strings.Contains(instance, "@") })
	if err != nil || n != 1 {
		t.Fatalf("RemoveMatching: %d, %v; want the one run's group", n, err)
	}
	_ = cmd.Wait()
	for _, pid := range kids {
		for i := 0; i < 100 && alive(pid); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("pid %d of the left run survived the sweep", pid)
		}
	}
	for _, d := range run.Dirs() {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("the run's group %s is still there: %v", d, err)
		}
	}
	for _, d := range svc.Dirs() {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("the instance's group %s was removed: %v", d, err)
		}
	}
}

// probeEnv makes the test binary print Probe's answer and exit (TestMain),
// for TestProbeAsAnotherUser.
const probeEnv = "PLUGS_CGROUP_TEST_PROBE"

func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) == "1" {
		mode, cs, err := Probe()
		fmt.Printf("mode=%q controllers=%v err=%v\n", mode, cs, err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestProbeAsAnotherUser: for a user that cannot write the cgroups (no
// delegation), Probe says so instead of listing controllers it could not
// use (plugs validate said "memory, pids, cpu enforced" and the daemon of
// that user enforced none).
func TestProbeAsAnotherUser(t *testing.T) {
	needRoot(t)
	if _, _, err := Probe(); err != nil {
		t.Skipf("no cgroups here: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "cgroup-probe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "probe.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{probeEnv + "=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probe as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `mode=""`) || !strings.Contains(string(out), "not writable") {
		t.Errorf("Probe as a user who cannot write the cgroups: %s, want no cgroups, saying why", out)
	}
}
