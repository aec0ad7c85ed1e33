package spec

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

func TestTaskDecodeAndOverride(t *testing.T) {
	manifest := `plugin "notify" {
  command = ["./notify"]
  task {
    max_concurrent = 2
    timeout        = "10s"
    output_limit   = "1KiB"
    history        = 20
  }
  schedule {
    cron = "0 * * * *"
  }
}
`
	m, diags := NewParser().ParseManifest([]byte(manifest), "plugin.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	deployment := `plug "notify" {
  source = "./notify"
  task {
    max_concurrent = 4
    queue          = 0
    max_timeout    = "5m"
    max_output     = 1048576
  }
  schedule {
    cron       = "*/5 * * * *"
    time_zone  = "UTC"
    persistent = true
    jitter     = "0s"
    input      = jsonencode({ to = "ops" })
  }
  schedule {
    every   = "90s"
    overlap = true
  }
}
plug "svc" {
  source = "./svc"
}
`
	p := NewParser()
	p.Hostname = func() (string, error) { return "h", nil }
	d, diags := p.ParseDeployment([]byte(deployment), "plugs.hcl", nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	zero, noQueue := time.Duration(0), 0
	got := EffectiveTask(d.Plugs[0], m)
	want := &Task{
		MaxConcurrent: 4, Queue: &noQueue, Timeout: 10 * time.Second, MaxTimeout: 5 * time.Minute,
		OutputLimit: 1024, MaxOutput: 1 << 20, History: 20, HasTaskBlock: true,
		Schedules: []*Schedule{
			{Cron: "*/5 * * * *", UTC: true, Persistent: true, Jitter: &zero, Input: `{"to":"ops"}`},
			{Every: 90 * time.Second, Overlap: true},
		},
	}
	if diff := cmp.Diff(want, got, specCmp...); diff != "" {
		t.Errorf("task (-want +got):\n%s", diff)
	}
	// The manifest alone makes a task, with its schedule.
	if got := EffectiveTask(&Plug{}, m); got == nil || len(got.Schedules) != 1 || got.Schedules[0].Cron != "0 * * * *" || got.MaxConcurrent != 2 {
		t.Errorf("manifest task = %+v", got)
	}
	// A schedule alone makes a task.
	if got := EffectiveTask(d.Plugs[1], nil); got != nil {
		t.Errorf("a plug without task or schedule is a task: %+v", got)
	}
	d2, diags := p.ParseDeployment([]byte("plug \"x\" {\n  source = \"./x\"\n  schedule { every = \"1h\" }\n}\n"), "plugs.hcl", nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := EffectiveTask(d2.Plugs[0], nil); got == nil || got.HasTaskBlock || got.Schedules[0].Every != time.Hour {
		t.Errorf("schedule-only task = %+v", got)
	}
}

// TestTaskInPluginJSON: plugin.json declares a task in both legacy shapes
// with "task" and "schedule" (TestManifestTwins shows they decode as
// plugin.hcl's blocks do); what plugin.hcl refuses, plugin.json refuses.
func TestTaskInPluginJSON(t *testing.T) {
	for _, tc := range []struct {
		src       string
		schedules int
		block     bool
	}{
		{`{"name": "x", "cli command": "./x", "task": {}}`, 0, true},
		{`{"name": "x", "entry_point": "./x", "task": {"max_concurrent": 2}}`, 0, true},
		{`{"name": "x", "entry_point": "./x", "schedule": {"every": "5m"}}`, 1, false},
		{`{"name": "x", "cli command": "./x", "schedule": [{"every": "5m"}, {"cron": "@daily"}]}`, 2, false},
	} {
		m, diags := NewParser().ParseManifest([]byte(tc.src), "plugin.json")
		if len(diags) != 0 {
			t.Fatalf("%s: %v", tc.src, diags)
		}
		if m.Task == nil || len(m.Task.Schedules) != tc.schedules || m.Task.HasTaskBlock != tc.block {
			t.Fatalf("%s: task %+v", tc.src, m.Task)
		}
		if got := EffectiveTask(&Plug{}, m); got == nil {
			t.Fatalf("%s: not a task", tc.src)
		}
	}
	if m, _ := NewParser().ParseManifest([]byte(`{"name": "x", "cli command": "./x"}`), "plugin.json"); m.Task != nil {
		t.Fatalf("a service got a task: %+v", m.Task)
	}

	for _, tc := range []struct{ src, summary string }{
		{`{"name": "x", "cli command": "./x", "task": {"max_concurent": 2}}`, "Unsupported argument"},
		{`{"name": "x", "cli command": "./x", "task": true}`, "Incorrect field type"},
		{`{"name": "x", "cli command": "./x", "task": {"max_concurrent": 0}}`, "Invalid number"},
		{`{"name": "x", "cli command": "./x", "task": {"timeout": "10s", "max_timeout": "5s"}}`, "Invalid max_timeout"},
		{`{"name": "x", "cli command": "./x", "task": {"output_limit": "lots"}}`, "Invalid size"},
		{`{"name": "x", "entry_point": "./x", "schedule": {"cron": "every day"}}`, "Invalid cron expression"},
		{`{"name": "x", "entry_point": "./x", "schedule": {"cron": "@daily", "every": "1h"}}`, "Conflicting schedule"},
		{`{"name": "x", "entry_point": "./x", "schedule": {}}`, "Missing schedule"},
		{`{"name": "x", "entry_point": "./x", "schedule": [{"every": "100ms"}]}`, "Interval too short"},
		{`{"name": "x", "entry_point": "./x", "schedule": {"every": "1h", "time_zone": "Mars"}}`, "Invalid time zone"},
		{`{"name": "x", "entry_point": "./x", "schedule": "hourly"}`, "Incorrect field type"},
		{`{"name": "x", "entry_point": "./x", "schedule": {"every": "1h", "overlap": "yes"}}`, "Incorrect attribute value type"},
	} {
		_, diags := NewParser().ParseManifest([]byte(tc.src), "plugin.json")
		found := false
		for _, d := range diags {
			if d.Summary == tc.summary && d.Severity == hcl.DiagError {
				found = true
				if d.Subject == nil {
					t.Errorf("%s: %q has no subject", tc.src, d.Summary)
				}
			}
		}
		if !found {
			t.Errorf("%s: diagnostics %v, want the error %q", tc.src, diags, tc.summary)
		}
	}
}

// TestCronThatCannotRun: a cron expression no date matches (robfig/cron
// parses it, and its Next is the zero time: the scheduler fired it back to
// back) and an @every under the every argument's one-second minimum are
// errors at the cron argument, in plugs.hcl and in plugin.json; schedules
// that run, rarely or at the minimum, still decode.
func TestCronThatCannotRun(t *testing.T) {
	for _, tc := range []struct{ cron, summary string }{
		{"0 0 30 2 *", "Schedule never runs"},
		{"0 0 31 4,6,9,11 *", "Schedule never runs"},
		{"TZ=UTC 0 0 30 2 *", "Schedule never runs"},
		{"@every 1ms", "Interval too short"},
		{"@every 0s", "Interval too short"},
		{"@every -1s", "Interval too short"},
		{"CRON_TZ=UTC @every 999ms", "Interval too short"},
		{"0 0 29 2 *", ""},
		{"0 0 31 * *", ""},
		{"@every 1s", ""},
		{"@yearly", ""},
	} {
		src := "plug \"x\" {\n  source = \"./x\"\n  schedule {\n    cron = \"" + tc.cron + "\"\n  }\n}\n"
		_, diags := NewParser().ParseDeployment([]byte(src), "plugs.hcl", nil)
		js := `{"name": "x", "entry_point": "./x", "schedule": {"cron": "` + tc.cron + `"}}`
		_, jdiags := NewParser().ParseManifest([]byte(js), "plugin.json")
		for _, c := range []struct {
			diags hcl.Diagnostics
			line  int
		}{{diags, 4}, {jdiags, 1}} {
			if tc.summary == "" {
				if c.diags.HasErrors() {
					t.Errorf("cron %q: %v", tc.cron, c.diags)
				}
				continue
			}
			if len(c.diags) != 1 || c.diags[0].Summary != tc.summary || c.diags[0].Severity != hcl.DiagError ||
				c.diags[0].Subject == nil || c.diags[0].Subject.Start.Line != c.line {
				t.Errorf("cron %q: %v, want one error %q at line %d", tc.cron, c.diags, tc.summary, c.line)
			}
		}
	}
}
