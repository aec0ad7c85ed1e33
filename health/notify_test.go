package health

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/internal/testplugin"
)

// waitFor waits for OnChange calls until cond holds for id's status; the
// test's own timeout bounds it.
func waitFor(t *testing.T, m *Manager, changed <-chan ID, id ID, cond func(Status) bool) Status {
	t.Helper()
	for {
		if s, _ := m.Status(id); cond(s) {
			return s
		}
		select {
		case <-changed:
		case <-time.After(30 * time.Second):
			s, _ := m.Status(id)
			t.Fatalf("status never came: %+v", s)
		}
	}
}

func startChild(t *testing.T, m *Manager, id ID, cfg Config, cmd *exec.Cmd) {
	t.Helper()
	for k, v := range m.Env(id, cfg) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	m.Observe(id, true, cmd.Process.Pid, time.Now())
}

func newRealManager(t *testing.T, stateDir string) (*Manager, chan ID) {
	changed := make(chan ID, 100)
	m := New(Options{StateDir: stateDir, OnChange: func(id ID) {
		select {
		case changed <- id:
		default:
		}
	}})
	t.Cleanup(m.Close)
	return m, changed
}

// TestNotifyGoSystemd: a Go program using coreos/go-systemd, unchanged,
// becomes ready through its instance's socket.
func TestNotifyGoSystemd(t *testing.T) {
	m, changed := newRealManager(t, t.TempDir())
	cfg := Config{Checks: []Check{{Name: "ready", Type: TypeNotify, Failures: 1}}}
	if err := m.Configure(testID, cfg); err != nil {
		t.Fatal(err)
	}
	path := NotifySocketPath(m.stateDir, testID)
	if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %s: %v", path, err)
	}
	cmd := exec.Command(testplugin.Self(), "READY=1\nSTATUS=serving 3 straps")
	cmd.Env = []string{testplugin.Env + "=notify"}
	startChild(t, m, testID, cfg, cmd)
	s := waitFor(t, m, changed, testID, func(s Status) bool { return s.Ready })
	if s.Health != Healthy || s.NotifyStatus != "serving 3 straps" {
		t.Errorf("status %+v", s)
	}
	m.Remove(testID)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after Remove: %v", err)
	}
}

// TestNotifyPython: a python program with a few lines of socket code (what
// the sdnotify package does) becomes ready, with its watchdog kept.
func TestNotifyPython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed (scripts/test-deps.sh installs it)")
	}
	dir := t.TempDir()
	script := `import os, socket, time
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(addr)
assert os.environ["WATCHDOG_USEC"] == "500000"
s.send(b"READY=1\nSTATUS=python ready")
for _ in range(600):
    time.sleep(0.1)
    s.send(b"WATCHDOG=1")
`
	os.WriteFile(filepath.Join(dir, "notify.py"), []byte(script), 0o644)
	m, changed := newRealManager(t, t.TempDir())
	cfg := Config{Checks: []Check{{Name: "ready", Type: TypeNotify, Watchdog: 500 * time.Millisecond, Failures: 1}}}
	if err := m.Configure(testID, cfg); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "notify.py")
	cmd.Dir = dir
	startChild(t, m, testID, cfg, cmd)
	s := waitFor(t, m, changed, testID, func(s Status) bool { return s.Ready })
	if s.NotifyStatus != "python ready" {
		t.Errorf("status %+v", s)
	}
	// The watchdog keeps it healthy; killing the program fails it.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGSTOP)
	s = waitFor(t, m, changed, testID, func(s Status) bool { return s.Health == Unhealthy })
	if !strings.Contains(s.LastFailure, "no WATCHDOG=1 for 500ms") {
		t.Errorf("last failure %q", s.LastFailure)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGCONT)
	waitFor(t, m, changed, testID, func(s Status) bool { return s.Health == Healthy })
}

// TestNotifyOtherProcessIgnored: a datagram from a process outside the
// instance's process group does not make it ready.
func TestNotifyOtherProcessIgnored(t *testing.T) {
	m, changed := newRealManager(t, t.TempDir())
	cfg := Config{Checks: []Check{{Name: "ready", Type: TypeNotify, Failures: 1}}}
	if err := m.Configure(testID, cfg); err != nil {
		t.Fatal(err)
	}
	sleeper := exec.Command("sleep", "60")
	startChild(t, m, testID, cfg, sleeper)
	// Another process group sends READY=1 to the instance's socket.
	sender := exec.Command(testplugin.Self(), "READY=1")
	sender.Env = []string{testplugin.Env + "=notify", "NOTIFY_SOCKET=" + NotifySocketPath(m.stateDir, testID)}
	sender.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := sender.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { syscall.Kill(-sender.Process.Pid, syscall.SIGKILL); sender.Wait() }()
	// A message from the right group after it proves the socket works.
	time.Sleep(200 * time.Millisecond)
	m.Notify(testID, sleeper.Process.Pid, map[string]string{"STATUS": "marker"})
	s := waitFor(t, m, changed, testID, func(s Status) bool { return s.NotifyStatus == "marker" })
	if s.Ready {
		t.Errorf("ready from another process group: %+v", s)
	}
}

func TestNotifySocketPathLong(t *testing.T) {
	short := NotifySocketPath("/var/lib/plugs", testID)
	if short != "/var/lib/plugs/instances/p/i/notify.sock" {
		t.Errorf("short path %q", short)
	}
	long := NotifySocketPath("/"+strings.Repeat("d", 120), testID)
	if !strings.HasPrefix(long, "@plugs-notify-") || long != NotifySocketPath("/"+strings.Repeat("d", 120), testID) {
		t.Errorf("long path %q", long)
	}
	m, changed := newRealManager(t, "/"+strings.Repeat("d", 120))
	cfg := Config{Checks: []Check{{Name: "ready", Type: TypeNotify, Failures: 1}}}
	if err := m.Configure(testID, cfg); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testplugin.Self(), "READY=1")
	cmd.Env = []string{testplugin.Env + "=notify"}
	startChild(t, m, testID, cfg, cmd)
	waitFor(t, m, changed, testID, func(s Status) bool { return s.Ready })
}
