package ui_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/daemon"
	bt "github.com/plugs-dev/plugs/internal/browsertest"
)

// planted is a secret param's value: it is in config.json and must be in
// no page.
const planted = "s3cr3t-planted-in-plugs-hcl"

const plugin = `plugin "ticker" {
  version      = "1.0.0"
  description  = "Prints a tick a second"
  instructions = "Nothing to pair."
  kind         = "script"
  command      = ["sh", "-c", "while true; do echo tick $PLUGS_INSTANCE; sleep 1; done"]
  param "token" {
    type   = string
    secret = true
  }
  param "interval" {
    type    = string
    default = "1s"
  }
}
`

const deployment = `plug "alpha" {
  source = "./plugins/ticker"
  params = { token = env("UI_TEST_TOKEN") }
  instance "one" {}
  instance "two" {}
}

plug "beta" {
  source = "./plugins/ticker"
  params = { token = env("UI_TEST_TOKEN"), interval = "2s" }
}
`

// liveDaemon is a real plugs daemon serving the dashboard with basic auth.
type liveDaemon struct {
	dir    string
	client *api.Client
	base   string // the dashboard's URL
	auth   string // its Authorization header
}

func startLiveDaemon(t *testing.T, noWatch bool) *liveDaemon {
	t.Helper()
	return startLiveDaemonWith(t, noWatch, map[string]string{"plugins/ticker/plugin.hcl": plugin, "plugs.hcl": deployment}, 3)
}

// startLiveDaemonWith starts a daemon on files (plugs.hcl and its plugins)
// and waits until running instances run.
func startLiveDaemonWith(t *testing.T, noWatch bool, files map[string]string, running int) *liveDaemon {
	t.Helper()
	t.Setenv("UI_TEST_TOKEN", planted)
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		write(name, content)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("ward-3"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	write("web.yml", "basic_auth_users:\n  tech: "+string(hash)+"\n")

	state := filepath.Join(dir, ".plugs")
	ready := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- daemon.Run(ctx, daemon.Options{
			File: filepath.Join(dir, "plugs.hcl"), StateDir: state,
			MetricsAddr: "127.0.0.1:0", BrokerAddr: "127.0.0.1:0", UIAddr: "127.0.0.1:0",
			WebConfigFile: filepath.Join(dir, "web.yml"),
			NoWatch:       noWatch,
			Logger:        slog.New(slog.DiscardHandler),
			Ready:         func() { close(ready) },
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-errc:
		errc <- err
		t.Fatalf("daemon ended before ready: %v", err)
	}
	c, err := api.Dial(state)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	d := &liveDaemon{dir: dir, client: c, auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("tech:ward-3"))}
	st := d.waitStatus(t, fmt.Sprint(running, " running instances"), func(s *api.Status) bool {
		n := 0
		for _, i := range s.Instances {
			if i.State == "running" && i.PID > 0 {
				n++
			}
		}
		return n == running
	})
	if st.Daemon.UIAddr == "" {
		t.Fatal("status names no dashboard address")
	}
	d.base = "http://" + st.Daemon.UIAddr
	return d
}

func (d *liveDaemon) waitStatus(t *testing.T, what string, ok func(*api.Status) bool) *api.Status {
	t.Helper()
	for range 600 {
		st, err := d.client.Status(context.Background())
		if err == nil && ok(st) {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
	return nil
}

func pids(st *api.Status) map[string]int {
	m := map[string]int{}
	for _, i := range st.Instances {
		m[i.Plug+"/"+i.Instance] = i.PID
	}
	return m
}

// browser opens a tab that sends the dashboard's credentials.
func (d *liveDaemon) browser(t *testing.T) context.Context {
	ctx := bt.New(t)
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": d.auth}}); err != nil {
		t.Fatal(err)
	}
	return ctx
}

func html(ctx context.Context, t *testing.T) string {
	return bt.Eval[string](ctx, t, `document.documentElement.outerHTML`)
}

// TestDashboardAgainstDaemon is the dashboard end to end: a real daemon,
// real processes, headless Chromium.
func TestDashboardAgainstDaemon(t *testing.T) {
	d := startLiveDaemon(t, false)
	ctx := d.browser(t)

	// The secret is planted: the config the process reads has it.
	cfg, err := os.ReadFile(filepath.Join(d.dir, ".plugs/instances/alpha/one/config.json"))
	if err != nil || !strings.Contains(string(cfg), planted) {
		t.Fatalf("the planted secret is not in config.json (%v)", err)
	}

	t.Run("pages show the real instances and no secret", func(t *testing.T) {
		st, _ := d.client.Status(context.Background())
		bt.Step(ctx, t, "instances", chromedp.Navigate(d.base+"/instances"))
		for id, pid := range pids(st) {
			got := bt.Eval[string](ctx, t, fmt.Sprintf(`(() => { const a = [...document.querySelectorAll("#rows tr")].find(r => r.querySelector("th").textContent === %q); return a ? a.dataset.pid : "" })()`, id))
			if got != fmt.Sprint(pid) {
				t.Errorf("%s: page shows pid %q, daemon %d", id, got, pid)
			}
		}
		for _, path := range []string{"/", "/instances", "/instances/alpha/one", "/instances/alpha/two", "/instances/beta/default", "/plugins", "/plan", "/history", "/instances/beta/default/restart"} {
			bt.Step(ctx, t, path, chromedp.Navigate(d.base+path))
			if h := html(ctx, t); strings.Contains(h, planted) {
				t.Errorf("%s contains the planted secret", path)
			} else if !strings.Contains(h, "plugs") || strings.Contains(h, "Unauthorized") {
				t.Errorf("%s did not load", path)
			}
		}
		bt.Step(ctx, t, "instance", chromedp.Navigate(d.base+"/instances/alpha/one"))
		if h := html(ctx, t); !strings.Contains(h, `"token": "(sensitive)"`) {
			t.Error("the instance page does not show the token as (sensitive)")
		}
		// The process tree and the live log.
		bt.WaitFor(ctx, t, "the log tail", `document.getElementById("log").textContent.includes("tick one")`)
		n := bt.Eval[int](ctx, t, `document.getElementById("log").textContent.split("tick one").length`)
		bt.WaitFor(ctx, t, "a new log line", fmt.Sprintf(`document.getElementById("log").textContent.split("tick one").length > %d`, n))
		if !bt.Eval[bool](ctx, t, `[...document.querySelectorAll("th.tree")].some(th => th.textContent.includes("sh"))`) {
			t.Error("the process tree does not show the shell")
		}
	})

	t.Run("restart from the page changes that pid only", func(t *testing.T) {
		before, _ := d.client.Status(context.Background())
		old := pids(before)
		bt.Step(ctx, t, "open", chromedp.Navigate(d.base+"/instances/alpha/two"))
		bt.Click(ctx, t, `a[data-action="restart"]`)
		bt.Click(ctx, t, `form[method=post] button[type=submit]`)
		bt.WaitFor(ctx, t, "the notice", `document.querySelector(".notice") !== null`)
		after := d.waitStatus(t, "alpha/two restarted", func(s *api.Status) bool {
			p := pids(s)["alpha/two"]
			return p != 0 && p != old["alpha/two"]
		})
		for id, pid := range pids(after) {
			if id != "alpha/two" && pid != old[id] {
				t.Errorf("%s changed pid %d -> %d", id, old[id], pid)
			}
		}
		bt.WaitFor(ctx, t, "the new pid on the page", fmt.Sprintf(`document.querySelector('[data-testid=pid]')?.textContent.trim() === "%d"`, pids(after)["alpha/two"]))
	})

	t.Run("a crash shows without reload", func(t *testing.T) {
		bt.Step(ctx, t, "instances", chromedp.Navigate(d.base+"/instances"))
		bt.WaitFor(ctx, t, "the event stream", `document.getElementById("conn").dataset.state === "on"`)
		bt.Eval[bool](ctx, t, `window.plugsMark = true`)
		st, _ := d.client.Status(context.Background())
		pid := pids(st)["beta/default"]
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		row := `[...document.querySelectorAll("#rows tr")].find(r => r.querySelector("th").textContent === "beta/default")`
		bt.WaitFor(ctx, t, "the crash in the row", row+`.textContent.includes("killed by SIGKILL")`)
		bt.WaitFor(ctx, t, "the new pid in the row", fmt.Sprintf(`%s.dataset.pid !== "%d" && %s.dataset.pid !== "0"`, row, pid, row))
		if !bt.Eval[bool](ctx, t, `window.plugsMark === true`) {
			t.Error("the page reloaded")
		}
	})

	t.Run("stop is an override until the next apply", func(t *testing.T) {
		bt.Step(ctx, t, "open", chromedp.Navigate(d.base+"/instances/alpha/one"))
		bt.Click(ctx, t, `a[data-action="stop"]`)
		bt.Click(ctx, t, `form[method=post] button[type=submit]`)
		bt.WaitFor(ctx, t, "stopped by hand", `document.querySelector('[data-testid=state]')?.textContent === "stopped" && document.body.textContent.includes("stopped by hand")`)
		bt.Step(ctx, t, "plan", chromedp.Navigate(d.base+"/plan"))
		if h := html(ctx, t); !strings.Contains(h, "alpha/one") || !strings.Contains(h, "1 to start") {
			t.Errorf("the plan does not start alpha/one again:\n%s", h)
		}
		bt.Click(ctx, t, `form[action="/plan/apply"] button`)
		bt.WaitFor(ctx, t, "applied", `document.querySelector('[data-testid=apply-summary]') !== null`)
		d.waitStatus(t, "alpha/one running again", func(s *api.Status) bool { return pids(s)["alpha/one"] > 0 })
	})

	t.Run("a bad plugs.hcl shows its diagnostic", func(t *testing.T) {
		bt.Step(ctx, t, "host", chromedp.Navigate(d.base+"/"))
		bt.WaitFor(ctx, t, "the event stream", `document.getElementById("conn").dataset.state === "on"`)
		bad := strings.Replace(deployment, `source = "./plugins/ticker"`, "source = \"./plugins/ticker\"\n  colour = \"blue\"", 1)
		if err := os.WriteFile(filepath.Join(d.dir, "plugs.hcl"), []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		bt.WaitFor(ctx, t, "the diagnostic without reload", `document.querySelector('[data-testid=diagnostic]') !== null && document.querySelector('[data-testid=diagnostic]').textContent.includes("colour")`)
		diag := bt.Eval[string](ctx, t, `document.querySelector('[data-testid=diagnostic]').textContent`)
		if !strings.Contains(diag, "plugs.hcl") {
			t.Errorf("the diagnostic names no file:\n%s", diag)
		}
		if err := os.WriteFile(filepath.Join(d.dir, "plugs.hcl"), []byte(deployment), 0o644); err != nil {
			t.Fatal(err)
		}
		bt.WaitFor(ctx, t, "the diagnostic gone", `document.querySelector('[data-testid=diagnostic]') === null`)
	})

	t.Run("auth and CSRF refuse", func(t *testing.T) {
		// No credentials: 401, for pages, streams and actions.
		for _, req := range []*http.Request{
			mustRequest(t, http.MethodGet, d.base+"/instances", ""),
			mustRequest(t, http.MethodGet, d.base+"/events", ""),
			mustRequest(t, http.MethodPost, d.base+"/instances/alpha/one/kill", "csrf=x"),
		} {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s without credentials: %d", req.Method, req.URL.Path, resp.StatusCode)
			}
		}
		// A page of another origin posts a restart form to the dashboard:
		// the browser sends the credentials and the cookie, the dashboard
		// refuses.
		before, _ := d.client.Status(context.Background())
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<form id=f method=post action="%s/instances/alpha/two/restart"><input name=csrf value=guess></form><script>document.getElementById("f").submit()</script>`, d.base)
		}))
		defer evil.Close()
		bt.Step(ctx, t, "a dashboard page first (the cookie)", chromedp.Navigate(d.base+"/instances/alpha/two/restart"))
		bt.Step(ctx, t, "the other origin", chromedp.Navigate(evil.URL))
		bt.WaitFor(ctx, t, "the refusal", `location.href.includes("/restart") && document.body.textContent.includes("refused")`)
		after, _ := d.client.Status(context.Background())
		if pids(after)["alpha/two"] != pids(before)["alpha/two"] {
			t.Error("a cross-origin form restarted alpha/two")
		}
		// Same origin but no token (a script of the page's origin that
		// skipped the form): refused too.
		req := mustRequest(t, http.MethodPost, d.base+"/instances/alpha/two/restart", "")
		req.Header.Set("Authorization", d.auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST without a token: %d", resp.StatusCode)
		}
	})
	http.DefaultClient.CloseIdleConnections()
}

func mustRequest(t *testing.T, method, url, form string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return req
}

// TestScreenshots writes the screenshots of docs/ui when
// PLUGS_UI_SCREENSHOTS names a directory (make screenshots).
func TestScreenshots(t *testing.T) {
	out := os.Getenv("PLUGS_UI_SCREENSHOTS")
	if out == "" {
		t.Skip("PLUGS_UI_SCREENSHOTS is not set")
	}
	d := startLiveDaemon(t, true)
	ctx := d.browser(t)
	shot := func(name, path string, w, h int64) {
		t.Helper()
		bt.Step(ctx, t, name, chromedp.EmulateViewport(w, h), chromedp.Navigate(d.base+path))
		bt.WaitFor(ctx, t, "the event stream", `document.getElementById("conn")?.dataset.state === "on"`)
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A crash, for the last exits.
	st, _ := d.client.Status(context.Background())
	syscall.Kill(pids(st)["beta/default"], syscall.SIGKILL)
	d.waitStatus(t, "beta restarted", func(s *api.Status) bool {
		for _, i := range s.Instances {
			if i.Plug == "beta" && i.LastExit != nil && i.PID > 0 {
				return true
			}
		}
		return false
	})
	time.Sleep(1500 * time.Millisecond) // some output and CPU time
	shot("instances", "/instances", 1280, 720)
	shot("instance", "/instances/beta/default", 1280, 720)
	shot("plugins", "/plugins", 1280, 720)
	shot("instances-phone", "/instances", 390, 844)
	// A bad save, applied: the diagnostic on the host page and in the history.
	bad := strings.Replace(deployment, `source = "./plugins/ticker"`, "source = \"./plugins/ticker\"\n  colour = \"blue\"", 1)
	os.WriteFile(filepath.Join(d.dir, "plugs.hcl"), []byte(bad), 0o644)
	d.client.Apply(context.Background())
	shot("host", "/", 1280, 720)
	shot("history", "/history", 1280, 720)
	// A good change, pending.
	changed := strings.Replace(deployment, `interval = "2s"`, `interval = "5s"`, 1)
	changed = strings.Replace(changed, `instance "two" {}`, "instance \"two\" {}\n  instance \"three\" {}", 1)
	os.WriteFile(filepath.Join(d.dir, "plugs.hcl"), []byte(changed), 0o644)
	shot("plan", "/plan", 1280, 720)
}
