package spec

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
