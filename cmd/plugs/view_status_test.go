package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
)

// TestStatusNeverClaimsWhatDoesNotRun: a failed first reconcile says that
// nothing runs; a failure after a good one names what keeps running; a
// reconcile in progress shows, with its step and age; the diagnostics are
// rendered with their source line.
func TestStatusNeverClaimsWhatDoesNotRun(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	diag := []api.Diagnostic{{Severity: "error", Summary: "Unsupported argument", Detail: "An argument named \"bogus\" is not expected here.",
		Range:   &api.Range{Filename: "plugs.hcl", Start: api.Pos{Line: 3, Column: 3}, End: api.Pos{Line: 3, Column: 8}},
		Snippet: &api.Snippet{Code: "  bogus = 1", StartLine: 3}}}
	failed := &api.ReconcileStatus{At: now.Add(-time.Minute), Error: "plugs.hcl:3,3-8: Unsupported argument", Kind: api.KindInput, Diagnostics: diag}
	var first bytes.Buffer
	writeStatusText(&first, &api.Status{Daemon: api.DaemonStatus{Started: now, Mode: "file", LastReconcile: failed,
		Reconciling: &api.Progress{Reason: "file changed", Since: now.Add(-90 * time.Second), Step: "load"}}}, now)
	out := first.String()
	for _, want := range []string{"nothing runs", "fix the input", "   3:   bogus = 1", "Reconciling:     load, since 1m30s ago (file changed)", "No instances."} {
		if !strings.Contains(out, want) {
			t.Errorf("first start, broken plugs.hcl: no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "keeps running") {
		t.Errorf("claims something keeps running when nothing does:\n%s", out)
	}
	var later bytes.Buffer
	writeStatusText(&later, &api.Status{Daemon: api.DaemonStatus{Started: now, Mode: "file", ConfigRevision: "abc123", LastReconcile: failed},
		Instances: []api.InstanceStatus{{Plug: "a", Instance: "default", State: "running", PID: 7}}}, now)
	if !strings.Contains(later.String(), "the configuration at revision abc123 keeps running") {
		t.Errorf("after a good reconcile: %s", later.String())
	}
}

// TestStatusShowsWhyAnInstanceDoesNotRun: the reason of an instance that
// does not run (the runner's backoff with the task hint, a failed start)
// and a task's schedule and last run are printed, not only in -o json.
func TestStatusShowsWhyAnInstanceDoesNotRun(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var b bytes.Buffer
	writeStatusText(&b, &api.Status{Daemon: api.DaemonStatus{Started: now, Mode: "file"}, Instances: []api.InstanceStatus{
		{Plug: "svc", Instance: "default", State: "running", PID: 7, Reason: "started"},
		{Plug: "oneshot", Instance: "default", State: "backoff", Reason: "exited with code 0; restart 2 in 1s (it keeps exiting 0 within seconds: if it is meant to run once, declare it as a task)"},
		{Plug: "notify", Instance: "default", State: "idle", Reason: "task; schedule */5 * * * *; last run success at 2026-01-02T03:00:00Z (exit 0)"},
	}}, now)
	out := b.String()
	for _, want := range []string{
		"oneshot/default (backoff): exited with code 0; restart 2 in 1s (it keeps exiting 0 within seconds: if it is meant to run once, declare it as a task)\n",
		"notify/default (idle): task; schedule */5 * * * *; last run success at 2026-01-02T03:00:00Z (exit 0)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "svc/default (running)") {
		t.Errorf("a running instance's reason is printed:\n%s", out)
	}
}
