package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/internal/mqtttest"
	"github.com/plugs-dev/plugs/sandbox"
)

// sandboxOn says whether a test's daemon runs with the sandbox: only the
// sandbox tests ask for it (PLUGS_SANDBOX=true in their env).
func sandboxOn(env []string) bool { return slices.Contains(env, "PLUGS_SANDBOX=true") }

// The plugins of TestSandbox, Python run by python3 from the plugin tree.
const (
	// probePy runs as the plug's own user: it reports its uid, tries a
	// loopback port it was not given, publishes to its broker, and tries
	// writing each path of its arguments (relative ones in its instance
	// directory).
	probePy = `import errno, json, os, socket, subprocess, sys, time
cfg = json.load(open(os.environ["PLUGS_CONFIG"]))
inst = os.path.dirname(os.environ["PLUGS_CONFIG"])
def name(e):
    return errno.errorcode.get(e.errno, str(e))
print("uid", os.getuid(), flush=True)
s = socket.socket()
s.settimeout(3)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
    print("other ok", flush=True)
except OSError as e:
    print("other", name(e), flush=True)
b = cfg["broker"]
auth = ["-u", b["username"], "-P", b["password"]] if b.get("username") else []
for p in sys.argv[2:]:
    p = os.path.join(inst, p)
    try:
        open(p, "w").write("x")
        print("write", p, "ok", flush=True)
    except OSError as e:
        print("write", p, name(e), flush=True)
# Publish now and then (the test subscribes at some point), a bounded number of times.
for i in range(600):
    r = subprocess.run(["mosquitto_pub", "-h", b["host"], "-p", str(b["port"]), "-t", cfg["topics"]["data"], "-m", "sandboxed hello"] + auth)
    if i == 0:
        print("publish", r.returncode, flush=True)
    time.sleep(0.5)
time.sleep(3600)
`
	hogPy = `a = []
while True:
    a.append(b"x" * (4 << 20))
`
	bombPy = `import subprocess, time
n = 0
try:
    while n < 10000:
        subprocess.Popen(["sleep", "3600"])
        n += 1
except OSError as e:
    print("refused after", n, flush=True)
time.sleep(3600)
`
	// gcSh leaves a grandchild in a session of its own (setsid, then the
	// shell that forked it exits), its pid in the instance directory.
	gcSh = `d=$(dirname "$PLUGS_CONFIG")
setsid sh -c 'sleep 3600 >/dev/null 2>&1 & echo $! > "$1/gc.pid"' sh "$d"
echo ready
exec sleep 3600
`
)

// TestSandbox runs a real daemon with the sandbox on (as root) and real
// plugins: one without network permission cannot reach another loopback
// port yet publishes to its broker, cannot write outside its instance
// directory and its filesystem.write grant, and runs as the unprivileged
// user plugs created for it; a memory hog is oom-killed (status, MQTT) and
// restarted; a fork bomb stops at its pids limit while the others run on;
// a setsid'd grandchild dies when the daemon stops.
func TestSandbox(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox test needs root")
	}
	for _, cmd := range []string{"python3", "mosquitto_pub", "setsid", "useradd"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("%s not installed (scripts/test-deps.sh installs it)", cmd)
		}
	}
	h := sandbox.ProbeHost()
	if h.ABI < 4 || !slices.Contains(h.Controllers, "memory") || !slices.Contains(h.Controllers, "pids") {
		t.Skipf("this host cannot enforce what the test checks: %v", h.Lines())
	}
	const plug = "e2esbx" // its user, plugs-e2esbx, is removed at the end
	userName := "plugs-" + plug
	t.Cleanup(func() {
		if _, err := user.Lookup(userName); err == nil {
			if out, err := exec.Command("userdel", userName).CombinedOutput(); err != nil {
				t.Errorf("userdel %s: %v: %s", userName, err, out)
			}
		}
	})

	// A folder every user may traverse (t.TempDir's parent is 0700).
	dir, err := os.MkdirTemp("", "plugs-e2e-sandbox-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"probe/main.py": probePy, "hog/main.py": hogPy, "bomb/main.py": bombPy, "gc/main.sh": gcSh} {
		writeFile(t, filepath.Join(dir, name), body)
	}
	granted := filepath.Join(dir, "granted")
	denied := filepath.Join(dir, "denied")
	for _, d := range []string{granted, denied} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, 0o777) // the umask: DAC allows it, only the sandbox refuses
	}
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	otherPort := other.Addr().(*net.TCPAddr).Port

	host := "e2e-" + randomHex(t)[:8]
	file := filepath.Join(dir, "plugs.hcl")
	writeFile(t, file, fmt.Sprintf(`host = %[1]q

plug %[2]q {
  source = "./probe"
  sandbox { permissions = ["filesystem.write:%[3]s"] }
  plugin {
    kind    = "script"
    command = ["python3", "main.py", "%[5]d", "probe", "%[3]s/x", "%[4]s/x"]
  }
}

plug "hog" {
  source = "./hog"
  user   = "root"
  limits { memory = "64MiB" }
  restart { initial_delay = "1s" }
  plugin {
    kind    = "script"
    command = ["python3", "main.py"]
  }
}

plug "bomb" {
  source = "./bomb"
  user   = "root"
  limits { pids = 16 }
  plugin {
    kind    = "script"
    command = ["python3", "main.py"]
  }
}

plug "gc" {
  source = "./gc"
  user   = "root"
  plugin {
    kind    = "script"
    command = ["sh", "main.sh"]
  }
}
`, host, plug, granted, denied, otherPort))

	// plugs validate says what each may do.
	v := mustPlugs(t, dir, []string{"PLUGS_SANDBOX=true"}, "validate", "-f", file)
	for _, want := range []string{
		plug + ": as " + userName + "; read plugin + system, write instance dir, write " + granted + "; network: broker",
		"hog: as root; read plugin + system, write instance dir; network: broker; memory 64MiB",
		"bomb: as root; read plugin + system, write instance dir; network: broker; pids 16",
	} {
		if !strings.Contains(v.stdout, want) {
			t.Errorf("plugs validate does not say %q:\n%s", want, v.stdout)
		}
	}

	// The system's interpreters: a python3 under root's home (pyenv) is
	// out of reach of the plugin's user and of its Landlock rules.
	d := startDaemon(t, dir, file, []string{"PLUGS_SANDBOX=true", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"})
	probe := plug + "/default"
	st := d.waitStatus(t, "instances running", func(st *api.Status) error {
		if !st.Daemon.BrokerConnected {
			return fmt.Errorf("broker not connected")
		}
		return running(probe, "bomb/default", "gc/default")(st)
	})
	url := st.Daemon.BrokerURL
	if len(st.Daemon.Sandbox) == 0 {
		t.Errorf("status has no sandbox lines")
	}
	// The embedded broker refuses anonymous subscribers: the reader account.
	w := watch(t, mqtttest.Reader(t, url, d.stateDir), "plugs/"+host+"/#", nil)

	// The probe: its own user, no other port, the broker, its folders.
	out := func(id string) string {
		b, _ := os.ReadFile(filepath.Join(d.stateDir, "instances", id, "output.log"))
		return string(b)
	}
	eventually(t, "probe done", func() error {
		if !strings.Contains(out(probe), "publish ") {
			return fmt.Errorf("output so far: %q", out(probe))
		}
		return nil
	})
	u, err := user.Lookup(userName)
	if err != nil {
		t.Fatalf("the plug's user: %v", err)
	}
	po := out(probe)
	for _, want := range []string{
		"uid " + u.Uid + "\n",
		"other EACCES\n", // Landlock: no network permission
		"publish 0\n",    // yet the broker is reachable
		"write " + filepath.Join(d.stateDir, "instances", probe, "probe") + " ok\n",
		"write " + granted + "/x ok\n",
		"write " + denied + "/x EACCES\n",
	} {
		if !strings.Contains(po, want) {
			t.Errorf("probe output lacks %q:\n%s", want, po)
		}
	}
	w.await("the probe's data point", func(m mqtttest.Message) bool {
		return strings.HasSuffix(m.Topic, "/"+probe+"/data") && string(m.Payload) == "sandboxed hello"
	})
	if i := instanceOf(st, probe); i == nil || !strings.Contains(i.Sandbox, "as "+userName) {
		t.Errorf("status sandbox line of %s: %+v", probe, i)
	}
	if uid := procUID(t, instanceOf(st, probe).PID); uid != u.Uid {
		t.Errorf("the probe's process runs as uid %s, want %s", uid, u.Uid)
	}

	// The hog: oom-killed at 64 MiB, in status and on MQTT, and restarted.
	var ms stateMessage
	w.await("hog oom-killed", func(m mqtttest.Message) bool {
		if !strings.HasSuffix(m.Topic, "/hog/default/state") {
			return false
		}
		var s struct {
			stateMessage
			LastExit string `json:"last_exit"`
		}
		_ = json.Unmarshal(m.Payload, &s)
		ms = s.stateMessage
		return s.LastExit == "oom-killed"
	})
	_ = ms
	hog := d.waitStatus(t, "hog restarted after its oom kill", func(st *api.Status) error {
		i := instanceOf(st, "hog/default")
		if i == nil || i.Restarts < 1 || i.LastExit == nil || !i.LastExit.OOMKilled {
			return fmt.Errorf("hog: %+v", i)
		}
		return nil
	})
	_ = hog

	// The fork bomb: refused at its pids limit; the others run on.
	eventually(t, "fork bomb refused", func() error {
		if !strings.Contains(out("bomb/default"), "refused after") {
			return fmt.Errorf("bomb output: %q", out("bomb/default"))
		}
		return nil
	})
	var n int
	fmt.Sscanf(out("bomb/default")[strings.Index(out("bomb/default"), "refused after"):], "refused after %d", &n)
	if n >= 16 {
		t.Errorf("the fork bomb forked %d processes with pids = 16", n)
	}
	now, err := d.status()
	if err != nil {
		t.Fatal(err)
	}
	if a, b := instanceOf(st, probe), instanceOf(now, probe); a == nil || b == nil || a.PID != b.PID || b.State != "running" {
		t.Errorf("the probe did not run on through the fork bomb: %+v then %+v", a, b)
	}

	// The setsid'd grandchild dies with the daemon's stop.
	var gc int
	eventually(t, "grandchild pid", func() error {
		b, err := os.ReadFile(filepath.Join(d.stateDir, "instances", "gc", "default", "gc.pid"))
		gc, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || gc == 0 {
			return fmt.Errorf("no gc.pid yet: %v", err)
		}
		return nil
	})
	if !pidAlive(gc) {
		t.Fatalf("grandchild %d not running", gc)
	}
	if err := d.stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "grandchild gone", func() error {
		if pidAlive(gc) {
			return fmt.Errorf("grandchild %d alive after the daemon stopped", gc)
		}
		return nil
	})
}

// procUID is the real uid of pid, from /proc.
func procUID(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			return f[1]
		}
	}
	return ""
}
