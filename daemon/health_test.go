package daemon

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
)

// notifyPlugin is a python program with a few lines of socket code (no
// library): systemd's notify protocol as any ecosystem speaks it.
const notifyPlugin = `plugin "py-notify" {
  version = "1.0.0"
  command = ["python3", "main.py"]
  check "ready" {
    type = "notify"
  }
}
`

const notifyMain = `import os, socket, time
time.sleep(0.3)  # warming up: not ready yet
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(addr)
s.send(b"READY=1\nSTATUS=listening")
while True:
    time.sleep(1)
`

// dataPlugin publishes on its data topic every 200 ms while the file named
// by its flag param exists (mosquitto_pub, with the credentials of its
// config.json).
const dataPlugin = `plugin "publisher" {
  version = "1.0.0"
  command = ["sh", "./run.sh"]
  param "flag" {
    type = string
  }
  check "fresh" {
    type   = "data"
    within = "1s"
  }
}
`

const dataRun = `#!/bin/sh
eval "$(python3 -c '
import json, shlex, sys
c = json.load(open(sys.argv[1]))
b = c["broker"]
for k, v in (("host", b["host"]), ("port", b["port"]), ("user", b["username"]), ("pw", b["password"]), ("topic", c["topics"]["data"]), ("flag", c["params"]["flag"])):
    print("%s=%s" % (k, shlex.quote(str(v))))
' "$PLUGS_CONFIG")"
while :; do
	if [ -e "$flag" ]; then
		mosquitto_pub -h "$host" -p "$port" -u "$user" -P "$pw" -t "$topic" -m '{}' -q 1 || true
	fi
	sleep 0.2
done
`

func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/test-deps.sh installs it)", tool)
		}
	}
}

// TestHealthNotifyAndExec: a python notify program becomes ready, an exec
// check follows a file, and status shows both with the failing output.
func TestHealthNotifyAndExec(t *testing.T) {
	needTools(t, "python3")
	dir := t.TempDir()
	writeFile(t, dir+"/plugins/py/plugin.hcl", notifyPlugin)
	writeFile(t, dir+"/plugins/py/main.py", notifyMain)
	flag := dir + "/ok"
	writeFile(t, dir+"/plugs.hcl", `plug "py" {
  source = "./plugins/py"
  check "file" {
    type     = "exec"
    command  = ["sh", "-c", "test -e `+flag+` || { echo missing `+flag+`; exit 1; }"]
    interval = "200ms"
    timeout  = "200ms"
  }
}
`)
	c := startDaemon(t, Options{File: dir + "/plugs.hcl", StateDir: dir + "/.plugs", UIAddr: "127.0.0.1:0"})
	st := waitStatus(t, c, "notify ready, exec failing", func(s *api.Status) bool {
		i := statusOf(s, "py", "default")
		return i != nil && i.Health != nil && i.Health.Status == "pending" && len(i.Health.Checks) == 2 && i.Health.Checks[0].Passing
	})
	h := statusOf(st, "py", "default").Health
	if h.Ready || h.NotifyStatus != "listening" || h.LastFailure != "file: exit 1: missing "+flag {
		t.Errorf("health %+v", h)
	}
	writeFile(t, flag, "")
	st = waitStatus(t, c, "healthy", func(s *api.Status) bool {
		i := statusOf(s, "py", "default")
		return i != nil && i.Health != nil && i.Health.Status == "healthy"
	})
	// The dashboard shows the same health (its health column and the
	// instance's checks panel).
	if page := getPage(t, "http://"+st.Daemon.UIAddr+"/instances/py/default"); !strings.Contains(page, "healthy") || !strings.Contains(page, "file") {
		t.Errorf("the dashboard's instance page shows no health:\n%.2000s", page)
	}
	if h := statusOf(st, "py", "default").Health; !h.Ready || h.ReadyAt.IsZero() || h.HealthySince.IsZero() {
		t.Errorf("health %+v", h)
	}
	os.Remove(flag)
	st = waitStatus(t, c, "unhealthy", func(s *api.Status) bool {
		i := statusOf(s, "py", "default")
		return i != nil && i.Health != nil && i.Health.Status == "unhealthy"
	})
	if h := statusOf(st, "py", "default").Health; !h.Ready {
		t.Errorf("an instance that was ready is not ready any more: %+v", h)
	}
	// The notify socket is the instance's, in its environment.
	env, err := os.ReadFile(filepath.Join("/proc", itoa(statusOf(st, "py", "default").PID), "environ"))
	if err != nil || !strings.Contains(string(env), "NOTIFY_SOCKET=") {
		t.Errorf("environment: %v", err)
	}
}

// TestHealthDataCheckRestart: a plugin that stops publishing goes unhealthy
// through its data check and is restarted by check_restart; the metrics
// show its health and data age.
func TestHealthDataCheckRestart(t *testing.T) {
	needTools(t, "python3", "mosquitto_pub")
	dir := t.TempDir()
	writeFile(t, dir+"/plugins/pub/plugin.hcl", dataPlugin)
	writeFile(t, dir+"/plugins/pub/run.sh", dataRun)
	flag := dir + "/publish"
	writeFile(t, flag, "")
	writeFile(t, dir+"/plugs.hcl", `plug "pub" {
  source = "./plugins/pub"
  params = { flag = "`+flag+`" }
  check_restart {
    limit = 2
    grace = "0s"
  }
  restart {
    initial_delay = "100ms"
  }
}
plug "quiet" {
  source = "./plugins/pub"
  params = { flag = "`+dir+`/never" }
}
`)
	c := startDaemon(t, Options{File: dir + "/plugs.hcl", StateDir: dir + "/.plugs"})
	st := waitStatus(t, c, "healthy by data", func(s *api.Status) bool {
		i := statusOf(s, "pub", "default")
		return i != nil && i.Health != nil && i.Health.Status == "healthy"
	})
	first := statusOf(st, "pub", "default")
	if first.Health.LastData.IsZero() {
		t.Errorf("no last data: %+v", first.Health)
	}
	metrics := scrape(t, st.Daemon.MetricsAddr)
	for _, want := range []string{
		`plugs_instance_healthy{instance="default",plug="pub"} 1`,
		`plugs_instance_healthy{instance="default",plug="quiet"} 0`,
		`plugs_check_passing{check="fresh",instance="default",plug="pub",type="data"} 1`,
		`plugs_instance_last_data_timestamp_seconds{instance="default",plug="pub"} `,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(metrics, `plugs_instance_last_data_timestamp_seconds{instance="default",plug="quiet"}`) {
		t.Error("a data timestamp for an instance that never published")
	}

	os.Remove(flag)
	st = waitStatus(t, c, "restarted by check_restart", func(s *api.Status) bool {
		i := statusOf(s, "pub", "default")
		return i != nil && i.PID > 0 && i.PID != first.PID && i.Restarts > first.Restarts
	})
	i := statusOf(st, "pub", "default")
	if i.Health == nil || i.Health.Restarts < 1 || !strings.Contains(i.Health.LastFailure, "fresh: no data for 1s") {
		t.Errorf("after restart: %+v %+v", i, i.Health)
	}
	writeFile(t, flag, "")
	waitStatus(t, c, "healthy again", func(s *api.Status) bool {
		i := statusOf(s, "pub", "default")
		return i != nil && i.Health != nil && i.Health.Status == "healthy"
	})
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func itoa(n int) string { return strconv.Itoa(n) }

// getPage returns the body of a GET of url, failing the test on an error
// or a status other than 200.
func getPage(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// TestMetricsForgetRemovedInstances: a plug removed from plugs.hcl leaves
// no plugs_instance_healthy series behind (with checks or without), and
// plugs_plug_info carries the version status shows, the manifest's for a
// local source.
func TestMetricsForgetRemovedInstances(t *testing.T) {
	dir, file := sleeperDir(t, `plug "kept" {
  source = "./plugins/sleeper"
}

plug "other" {
  source = "./plugins/sleeper"
}

plug "checked" {
  source = "./plugins/sleeper"
  check "ok" {
    type     = "exec"
    command  = ["true"]
    interval = "200ms"
    timeout  = "200ms"
  }
}
`)
	c := startDaemon(t, Options{File: file, StateDir: filepath.Join(dir, ".plugs"), NoWatch: true})
	st := waitStatus(t, c, "three running, checked healthy", func(s *api.Status) bool {
		i := statusOf(s, "checked", "default")
		return len(pids(s)) == 3 && i != nil && i.Health != nil && i.Health.Status == "healthy"
	})
	m := scrape(t, st.Daemon.MetricsAddr)
	for _, want := range []string{`plugs_instance_healthy{instance="default",plug="other"}`, `plugs_instance_healthy{instance="default",plug="checked"} 1`} {
		if !strings.Contains(m, want) {
			t.Fatalf("metrics lack %s before the removal:\n%s", want, m)
		}
	}
	if v := statusOf(st, "kept", "default").Version; v != "1.0.0" || !strings.Contains(m, `plug="kept",revision=`) ||
		!regexp.MustCompile(`plugs_plug_info\{[^}]*plug="kept"[^}]*version="1\.0\.0"`).MatchString(m) {
		t.Errorf("status says version %q; plugs_plug_info of kept:\n%s", v, grepLines(m, `plug="kept"`))
	}

	writeFile(t, file, "plug \"kept\" {\n  source = \"./plugins/sleeper\"\n}\n")
	if _, err := c.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, c, "only kept", func(s *api.Status) bool { return len(s.Instances) == 1 })
	time.Sleep(300 * time.Millisecond) // a late notice of the stopped instances would come by now
	m = scrape(t, st.Daemon.MetricsAddr)
	// What is true now (plugs_fetch_duration_seconds is a history of past
	// fetches, and keeps its series).
	var now []string
	for _, l := range strings.Split(m, "\n") {
		if !strings.HasPrefix(l, "plugs_fetch_duration_seconds") {
			now = append(now, l)
		}
	}
	for _, gone := range []string{`plug="other"`, `plug="checked"`} {
		if lines := grepLines(strings.Join(now, "\n"), gone); lines != "" {
			t.Errorf("metrics still hold the removed plug (%s):\n%s", gone, lines)
		}
	}
	if !strings.Contains(m, `plugs_instance_healthy{instance="default",plug="kept"} 1`) {
		t.Errorf("the kept instance's health series is gone:\n%s", grepLines(m, "plugs_instance_healthy"))
	}
}
