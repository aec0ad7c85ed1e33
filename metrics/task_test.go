package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestTaskMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewTasks(reg)
	m.TaskKnown("pull", time.Time{})
	m.TaskKnown("notify", time.Unix(1700000000, 0))
	m.TaskRun("pull", "success", 1500*time.Millisecond, time.Unix(1800000000, 500_000_000))
	m.TaskRun("pull", "timeout", 30*time.Second, time.Unix(1800000000, 500_000_000))
	m.TaskSkipped("pull", "overlap")

	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}
	want := `
# HELP plugs_task_last_success_timestamp_seconds Unix time the last successful run of the task plug ended; absent until one did (kept across daemon restarts).
# TYPE plugs_task_last_success_timestamp_seconds gauge
plugs_task_last_success_timestamp_seconds{plug="notify"} 1.7e+09
plugs_task_last_success_timestamp_seconds{plug="pull"} 1.8000000005e+09
# HELP plugs_task_runs_total Runs of task plugs, by result: success (exit 0), failure (another exit or a signal), timeout, error (could not start).
# TYPE plugs_task_runs_total counter
plugs_task_runs_total{plug="notify",result="error"} 0
plugs_task_runs_total{plug="notify",result="failure"} 0
plugs_task_runs_total{plug="notify",result="success"} 0
plugs_task_runs_total{plug="notify",result="timeout"} 0
plugs_task_runs_total{plug="pull",result="error"} 0
plugs_task_runs_total{plug="pull",result="failure"} 0
plugs_task_runs_total{plug="pull",result="success"} 1
plugs_task_runs_total{plug="pull",result="timeout"} 1
# HELP plugs_task_skipped_total Runs of task plugs that did not start: overlap (a scheduled run while the previous one still ran) or busy (max_concurrent and a full queue).
# TYPE plugs_task_skipped_total counter
plugs_task_skipped_total{plug="notify",reason="busy"} 0
plugs_task_skipped_total{plug="notify",reason="overlap"} 0
plugs_task_skipped_total{plug="pull",reason="busy"} 0
plugs_task_skipped_total{plug="pull",reason="overlap"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "plugs_task_runs_total", "plugs_task_last_success_timestamp_seconds", "plugs_task_skipped_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.duration); n != 2 {
		t.Fatalf("%d duration series", n)
	}
	m.TaskForget("pull")
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP plugs_task_last_success_timestamp_seconds Unix time the last successful run of the task plug ended; absent until one did (kept across daemon restarts).
# TYPE plugs_task_last_success_timestamp_seconds gauge
plugs_task_last_success_timestamp_seconds{plug="notify"} 1.7e+09
`), "plugs_task_last_success_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(m.runs); n != 4 {
		t.Fatalf("%d runs series after forgetting pull", n)
	}
}
