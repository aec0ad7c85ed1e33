package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
)

// slowNotifyMain warms up for a second, then creates $MARK and only then
// sends READY=1 (a few lines of socket code, no library): whoever sees
// $MARK missing ran before it was ready.
const slowNotifyMain = `import os, socket, time
time.sleep(1)
open(os.environ["MARK"], "w").close()
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(addr)
s.send(b"READY=1\nSTATUS=serving")
while True:
    time.sleep(1)
`

// neverReadyMain has a notify check and never says READY=1.
const neverReadyMain = `import time
while True:
    time.sleep(1)
`

const readyPlugin = `plugin "db" {
  version = "1.0.0"
  command = ["python3", "main.py"]
  check "ready" {
    type = "notify"
  }
}
`

// appPlugin writes whether $MARK existed when it started into $OUT.
const appPlugin = `plugin "app" {
  version = "1.0.0"
  command = ["sh", "-c", "if [ -e \"$MARK\" ]; then echo after; else echo before; fi > \"$OUT\"; exec sleep 1000"]
}
`

// seen reads what a marker-reading program wrote, waiting for it.
func seen(t *testing.T, file string) string {
	t.Helper()
	for range 200 {
		if b, err := os.ReadFile(file); err == nil && len(b) > 0 {
			return strings.TrimSpace(string(b))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never written", file)
	return ""
}

// TestDependsOnWaitsForReady: a dependent starts only after its
// dependency, a python notify program, sent READY=1 (not when it was
// forked), and the dependency's post_start runs only then too (issue 13).
func TestDependsOnWaitsForReady(t *testing.T) {
	needTools(t, "python3")
	dir := t.TempDir()
	writeFile(t, dir+"/plugins/db/plugin.hcl", readyPlugin)
	writeFile(t, dir+"/plugins/db/main.py", slowNotifyMain)
	writeFile(t, dir+"/plugins/app/plugin.hcl", appPlugin)
	mark := dir + "/db-ready"
	writeFile(t, dir+"/plugs.hcl", `plug "db" {
  source = "./plugins/db"
  env    = { MARK = "`+mark+`" }
  hooks {
    post_start = ["sh", "-c", "if [ -e `+mark+` ]; then echo after; else echo before; fi > `+dir+`/post"]
  }
}
plug "app" {
  source     = "./plugins/app"
  depends_on = ["db"]
  env        = { MARK = "`+mark+`", OUT = "`+dir+`/app" }
}
`)
	t0 := time.Now()
	c := startDaemon(t, Options{File: dir + "/plugs.hcl", StateDir: dir + "/.plugs"})
	if took := time.Since(t0); took < time.Second {
		t.Errorf("the first converge took %v: it did not wait for db's READY=1 (1 s)", took)
	}
	if got := seen(t, dir+"/app"); got != "after" {
		t.Errorf("app started %s db was ready", got)
	}
	if got := seen(t, dir+"/post"); got != "after" {
		t.Errorf("db's post_start ran %s db was ready", got)
	}
	st := waitStatus(t, c, "both running, db ready", func(s *api.Status) bool {
		db, app := statusOf(s, "db", "default"), statusOf(s, "app", "default")
		return db != nil && app != nil && db.Health != nil && db.Health.Ready && app.State == "running"
	})
	if app := statusOf(st, "app", "default"); app.Reason != "" {
		t.Errorf("app's reason %q, want none: its dependency was ready", app.Reason)
	}
	if db := statusOf(st, "db", "default"); db.Health.NotifyStatus != "serving" {
		t.Errorf("db's health %+v", db.Health)
	}
}

// TestDependsOnDeadline: a dependency that is not ready by its deadline
// (its update block's healthy_deadline) does not keep its dependent from
// starting: it starts then, and says why in its status reason; the
// dependency gets no post_start, and its log says so.
func TestDependsOnDeadline(t *testing.T) {
	needTools(t, "python3")
	dir := t.TempDir()
	writeFile(t, dir+"/plugins/db/plugin.hcl", readyPlugin)
	writeFile(t, dir+"/plugins/db/main.py", neverReadyMain)
	writeFile(t, dir+"/plugins/app/plugin.hcl", appPlugin)
	deployment := `plug "db" {
  source = "./plugins/db"
  update {
    min_healthy_time = "1s"
    healthy_deadline = "2s"
  }
  hooks {
    post_start = ["touch", "` + dir + `/post"]
  }
}
plug "app" {
  source     = "./plugins/app"
  depends_on = ["db"]
  env        = { MARK = "` + dir + `/never", OUT = "` + dir + `/app" }
}
`
	writeFile(t, dir+"/plugs.hcl", deployment)
	t0 := time.Now()
	c := startDaemon(t, Options{File: dir + "/plugs.hcl", StateDir: dir + "/.plugs"})
	if took := time.Since(t0); took < 2*time.Second || took > 10*time.Second {
		t.Errorf("the first converge took %v, want db's healthy_deadline (2 s)", took)
	}
	st := waitStatus(t, c, "app running", func(s *api.Status) bool {
		app := statusOf(s, "app", "default")
		return app != nil && app.State == "running"
	})
	if app := statusOf(st, "app", "default"); app.Reason != "dependency db not ready after 2s" {
		t.Errorf("app's reason %q", app.Reason)
	}
	if db := statusOf(st, "db", "default"); db.Health == nil || db.Health.Ready || db.Health.Status != "pending" {
		t.Errorf("db's health %+v", db.Health)
	}
	log := filepath.Join(dir, ".plugs/instances/db/default/output.log")
	for range 100 {
		if b, _ := os.ReadFile(log); strings.Contains(string(b), "plugs: post_start not run: not ready after 2s") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b, _ := os.ReadFile(log); !strings.Contains(string(b), "plugs: post_start not run: not ready after 2s") {
		t.Errorf("db's log does not say post_start was not run:\n%s", b)
	}
	if _, err := os.Stat(dir + "/post"); err == nil {
		t.Error("post_start ran for a process that never became ready")
	}

	// A replace of app waits for the running db again, and the apply
	// report says it went ahead without it.
	writeFile(t, dir+"/plugs.hcl", strings.Replace(deployment, `/app" }`, `/app2" }`, 1))
	rep, err := c.Apply(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Plan.Changes) != 1 || rep.Plan.Changes[0].Warning != "dependency db not ready after 2s" || rep.Failed != 0 || rep.Replaced != 1 {
		t.Errorf("apply report %+v", rep)
	}
	if got := seen(t, dir+"/app2"); got != "before" {
		t.Errorf("app2: %s", got)
	}
	st = waitStatus(t, c, "app replaced", func(s *api.Status) bool {
		app := statusOf(s, "app", "default")
		return app != nil && app.State == "running" && app.PID != statusOf(st, "app", "default").PID
	})
	first := statusOf(st, "app", "default")
	if first.Reason != "dependency db not ready after 2s" {
		t.Errorf("replaced app's reason %q", first.Reason)
	}
	// The reason belongs to that process: a restart (not waiting for db)
	// clears it.
	if _, err := c.Restart(t.Context(), api.RestartRequest{Plug: "app"}); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, c, "app restarted", func(s *api.Status) bool {
		app := statusOf(s, "app", "default")
		return app != nil && app.State == "running" && app.PID != first.PID
	})
	if app := statusOf(st, "app", "default"); app.Reason != "" {
		t.Errorf("restarted app's reason %q, want none", app.Reason)
	}
}

// TestDependsOnNeedsSetup: a dependency waiting for plugs setup cannot
// become ready by waiting, so its dependent starts at once, saying why.
func TestDependsOnNeedsSetup(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/plugins/db/plugin.hcl", `plugin "db" {
  version        = "1.0.0"
  command        = ["sleep", "1000"]
  setup_required = true
}
`)
	writeFile(t, dir+"/plugins/app/plugin.hcl", appPlugin)
	writeFile(t, dir+"/plugs.hcl", `plug "db" {
  source = "./plugins/db"
}
plug "app" {
  source     = "./plugins/app"
  depends_on = ["db"]
  env        = { MARK = "`+dir+`/never", OUT = "`+dir+`/app" }
}
`)
	t0 := time.Now()
	c := startDaemon(t, Options{File: dir + "/plugs.hcl", StateDir: dir + "/.plugs"})
	if took := time.Since(t0); took > 20*time.Second {
		t.Errorf("the first converge took %v: it waited for an instance that needs setup", took)
	}
	st := waitStatus(t, c, "app running", func(s *api.Status) bool {
		app := statusOf(s, "app", "default")
		return app != nil && app.State == "running"
	})
	want := "dependency db not ready: db/default: needs-setup: its plugin must be set up first: run plugs setup db"
	if app := statusOf(st, "app", "default"); app.Reason != want {
		t.Errorf("app's reason %q, want %q", app.Reason, want)
	}
}
