package ui_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/plugs-dev/plugs/api"
	bt "github.com/plugs-dev/plugs/internal/browsertest"
)

// rolloutPlugin runs while its tree's mode file says anything but
// "crash"; with "crash" it exits 3 after 0.3 s, again and again. Changing
// the file is a new revision.
const rolloutPlugin = `plugin "web" {
  version = "1.0.0"
  command = ["sh", "-c", "if [ \"$(cat mode)\" = crash ]; then sleep 0.3; exit 3; fi; while true; do echo up; sleep 1; done"]
  param "token" {
    type   = string
    secret = true
  }
}
`

const rolloutDeployment = `plug "web" {
  source = "./plugins/web"
  params = { token = env("UI_TEST_TOKEN") }
  update {
    max_parallel     = 1
    min_healthy_time = "1s"
    healthy_deadline = "6s"
    auto_revert      = true
  }
  restart {
    initial_delay = "100ms"
  }
  instance "a" {}
  instance "b" {}
}
`

func rolloutStatus(st *api.Status, plug string) *api.RolloutStatus {
	for i := range st.Rollouts {
		if st.Rollouts[i].Plug == plug {
			return &st.Rollouts[i]
		}
	}
	return nil
}

func (d *liveDaemon) waitRollout(t *testing.T, state string) *api.RolloutStatus {
	t.Helper()
	st := d.waitStatus(t, "rollout "+state, func(s *api.Status) bool {
		r := rolloutStatus(s, "web")
		return r != nil && r.State == state
	})
	return rolloutStatus(st, "web")
}

// TestDashboardShowsRollouts: a real daemon rolls out a plug with an
// update {} block, healthy, then a crashing revision that auto_revert
// takes back; the open pages follow both over the event stream without
// a reload: the state, desired and running revisions, batch progress,
// healthy and unproven counts, the held revision and why, auto_revert's
// outcome, and the history plugs history prints. No page holds the secret.
func TestDashboardShowsRollouts(t *testing.T) { dashboardRollouts(t, "") }

// TestScreenshotsRollout writes docs/ui/rollout.png (the reverted rollout's
// page) when PLUGS_UI_SCREENSHOTS names a directory (make screenshots).
func TestScreenshotsRollout(t *testing.T) {
	out := os.Getenv("PLUGS_UI_SCREENSHOTS")
	if out == "" {
		t.Skip("PLUGS_UI_SCREENSHOTS is not set")
	}
	dashboardRollouts(t, out)
}

func dashboardRollouts(t *testing.T, screenshots string) {
	d := startLiveDaemonWith(t, true, map[string]string{
		"plugins/web/plugin.hcl": rolloutPlugin, "plugins/web/mode": "one\n", "plugs.hcl": rolloutDeployment,
	}, 2)
	first := d.waitRollout(t, api.RolloutHealthy).Revision
	ctx := d.browser(t)
	text := func(testid string) string {
		return bt.Eval[string](ctx, t, `document.querySelector('[data-testid=`+testid+`]')?.textContent ?? ""`)
	}
	apply := func(mode string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(d.dir, "plugins/web/mode"), []byte(mode+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := d.client.Apply(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	bt.Step(ctx, t, "instances", chromedp.Navigate(d.base+"/instances"))
	row := `document.querySelector('#rollouts tr[data-plug="web"]')`
	bt.WaitFor(ctx, t, "web's rollout in the list", row+`?.dataset.state === "healthy" && `+row+`.textContent.includes("`+first+`")`)

	bt.Step(ctx, t, "the plug's rollout page", chromedp.Navigate(d.base+"/rollouts/web"))
	bt.WaitFor(ctx, t, "the event stream", `document.getElementById("conn").dataset.state === "on"`)
	if got := text("rollout-state"); got != "healthy" {
		t.Errorf("state %q, want healthy", got)
	}
	if got := text("rollout-desired"); got != first {
		t.Errorf("desired %q, daemon says %s", got, first)
	}
	if n := bt.Eval[int](ctx, t, `document.querySelectorAll('[data-testid=rollout-history] tr[data-verdict]').length`); n != 1 {
		t.Errorf("history shows %d revisions, want 1", n)
	}
	bt.Eval[bool](ctx, t, `window.plugsMark = true`)

	// A good revision rolls out in two batches of one.
	apply("two")
	bt.WaitFor(ctx, t, "rolling out", `document.querySelector('[data-testid=rollout-state]')?.textContent === "rolling-out"`)
	second := d.waitRollout(t, api.RolloutProgressing).Revision
	if got := text("rollout-desired"); got != second {
		t.Errorf("desired %q while rolling out, daemon says %s", got, second)
	}
	if got := text("rollout-batch"); !regexp.MustCompile(`^[12] of 2$`).MatchString(got) {
		t.Errorf("batch %q", got)
	}
	if got := text("rollout-counts"); !regexp.MustCompile(`^[012] of 2: [012] healthy, [012] unproven$`).MatchString(got) {
		t.Errorf("counts %q", got)
	}
	if got := text("rollout-runs"); !strings.Contains(got, second) {
		t.Errorf("runs %q names no %s", got, second)
	}
	// The batch under way has an unproven instance until min_healthy_time.
	bt.WaitFor(ctx, t, "an unproven instance", `/[12] unproven$/.test(document.querySelector('[data-testid=rollout-counts]')?.textContent ?? "")`)
	bt.WaitFor(ctx, t, "healthy again", `document.querySelector('[data-testid=rollout-state]')?.textContent === "healthy" && document.querySelector('[data-testid=rollout-desired]').textContent === "`+second+`"`)
	bt.WaitFor(ctx, t, "two revisions in the history", `document.querySelectorAll('[data-testid=rollout-history] tr[data-verdict="healthy"]').length === 2`)
	d.waitRollout(t, api.RolloutHealthy)

	// A crashing revision fails its first batch and is reverted.
	apply("crash")
	bt.WaitFor(ctx, t, "rolling out the crashing revision", `document.querySelector('[data-testid=rollout-state]')?.textContent === "rolling-out"`)
	bt.WaitFor(ctx, t, "reverted", `document.querySelector('[data-testid=rollout-state]')?.textContent === "reverted"`)
	r := d.waitRollout(t, api.RolloutReverted)
	if got := text("rollout-held"); got != r.Revision {
		t.Errorf("held %q, daemon holds %s", got, r.Revision)
	}
	if got := text("rollout-runs"); got != second || r.Override != second {
		t.Errorf("runs %q, daemon runs %s, want %s", got, r.Override, second)
	}
	if got := text("rollout-outcome"); got != "on: auto_revert went back to "+second {
		t.Errorf("outcome %q", got)
	}
	if got := text("rollout-reason"); got != r.Reason || !strings.Contains(got, "reverted to "+second) {
		t.Errorf("reason %q, daemon says %q", got, r.Reason)
	}
	bt.WaitFor(ctx, t, "the failed revision in the history", `document.querySelector('[data-testid=rollout-history] tbody tr')?.dataset.verdict === "failed"`)
	if !bt.Eval[bool](ctx, t, `window.plugsMark === true`) {
		t.Error("the page reloaded")
	}
	if out := screenshots; out != "" {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(out, "rollout.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The list and the instance page say the same; no page holds the secret.
	for _, path := range []string{"/", "/instances", "/instances/web/a", "/rollouts/web"} {
		bt.Step(ctx, t, path, chromedp.Navigate(d.base+path))
		h := html(ctx, t)
		if strings.Contains(h, planted) {
			t.Errorf("%s contains the planted secret", path)
		}
		if !strings.Contains(h, "reverted") || !strings.Contains(h, r.Revision) {
			t.Errorf("%s does not show the revert of %s", path, r.Revision)
		}
	}
	if cfg, err := os.ReadFile(filepath.Join(d.dir, ".plugs/instances/web/a/config.json")); err != nil || !strings.Contains(string(cfg), planted) {
		t.Fatalf("the planted secret is not in config.json (%v)", err)
	}
	bt.Step(ctx, t, "no such plug", chromedp.Navigate(d.base+"/rollouts/nope"))
	if h := html(ctx, t); !strings.Contains(h, "does not exist") {
		t.Error("/rollouts/nope is not a not-found page")
	}
}
