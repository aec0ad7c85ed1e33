package spec

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestChecksDecodeAndOverride(t *testing.T) {
	manifest := `plugin "hr" {
  command = ["./hr"]
  check "ready" {
    type     = "notify"
    watchdog = "20s"
    timeout  = "1m"
  }
  check "fresh" {
    type   = "data"
    within = "30s"
  }
  check "probe" {
    type     = "exec"
    command  = ["./probe", "-q"]
    interval = "30s"
    timeout  = "3s"
    failures = 2
  }
  check_restart {}
}
`
	m, diags := NewParser().ParseManifest([]byte(manifest), "plugin.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	deployment := `plug "hr" {
  source = "./hr"
  check "fresh" {
    type   = "data"
    within = "2m"
  }
  check "web" {
    type        = "http"
    url         = "http://127.0.0.1:8080/healthz"
    expect_body = "ok"
  }
  check "port" {
    type    = "tcp"
    address = "[::1]:5432"
  }
  check_restart {
    limit = 5
    grace = "30s"
  }
  update {
    max_parallel     = 2
    min_healthy_time = "5s"
    healthy_deadline = "1m"
    auto_revert      = true
  }
}
`
	p := NewParser()
	p.Hostname = func() (string, error) { return "h", nil }
	d, diags := p.ParseDeployment([]byte(deployment), "plugs.hcl", nil)
	if len(diags) != 0 {
		t.Fatal(diags)
	}
	h := EffectiveHealth(m, d.Plugs[0])
	want := Health{
		Checks: []*Check{
			{Name: "ready", Type: CheckNotify, Interval: DefaultCheckInterval, Timeout: time.Minute, Failures: 1, Watchdog: 20 * time.Second},
			{Name: "fresh", Type: CheckData, Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout, Failures: 1, Within: 2 * time.Minute},
			{Name: "probe", Type: CheckExec, Interval: 30 * time.Second, Timeout: 3 * time.Second, Failures: 2, Command: []string{"./probe", "-q"}},
			{Name: "web", Type: CheckHTTP, Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout, Failures: 1, URL: "http://127.0.0.1:8080/healthz", ExpectBody: "ok"},
			{Name: "port", Type: CheckTCP, Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout, Failures: 1, Address: "[::1]:5432"},
		},
		CheckRestart: &CheckRestart{Limit: 5, Grace: 30 * time.Second},
		Update:       &Update{MaxParallel: 2, MinHealthyTime: 5 * time.Second, HealthyDeadline: time.Minute, AutoRevert: true},
	}
	if diff := cmp.Diff(want, h, specCmp...); diff != "" {
		t.Errorf("health (-want +got):\n%s", diff)
	}
	// The manifest's check_restart applies when the plug has none, with defaults.
	if got := EffectiveHealth(m, &Plug{}).CheckRestart; got == nil || got.Limit != DefaultCheckRestartLimit || got.Grace != DefaultCheckRestartGrace {
		t.Errorf("manifest check_restart = %+v", got)
	}
	if got := EffectiveHealth(nil, &Plug{}); len(got.Checks) != 0 || got.CheckRestart != nil || got.Update != nil {
		t.Errorf("no health declared: %+v", got)
	}
}

func TestChecksInPluginJSON(t *testing.T) {
	for _, src := range []string{
		`{"name": "x", "cli command": "./x", "checks": {"ready": {"type": "notify"}, "fresh": {"type": "data", "within": "30s", "failures": 2}}}`,
		`{"name": "x", "entry_point": "./x", "checks": {"ready": {"type": "notify"}, "fresh": {"type": "data", "within": "30s", "failures": 2}}}`,
	} {
		m, diags := NewParser().ParseManifest([]byte(src), "plugin.json")
		if len(diags) != 0 {
			t.Fatal(diags)
		}
		want := []*Check{
			{Name: "ready", Type: CheckNotify, Interval: DefaultCheckInterval, Failures: 1},
			{Name: "fresh", Type: CheckData, Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout, Failures: 2, Within: 30 * time.Second},
		}
		if diff := cmp.Diff(want, m.Health.Checks, specCmp...); diff != "" {
			t.Errorf("%s: checks (-want +got):\n%s", m.Format, diff)
		}
	}
	_, diags := NewParser().ParseManifest([]byte(`{"name": "x", "cli command": "./x", "checks": {"a": {"type": "tcp", "adress": "x:1"}, "b": 3, "c": {}}}`), "plugin.json")
	var summaries []string
	for _, d := range diags {
		summaries = append(summaries, d.Summary)
	}
	want := []string{"Unsupported argument", "Missing required argument", "Incorrect field type", "Missing required argument"}
	if diff := cmp.Diff(want, summaries); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s\n%v", diff, diags)
	}
}
