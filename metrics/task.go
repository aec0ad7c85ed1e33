package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plugs-dev/plugs/task"
)

var _ task.Observer = (*Tasks)(nil)

// Tasks holds the metrics of task runs; it implements task.Observer. Every
// method is safe for concurrent use.
type Tasks struct {
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
	skipped     *prometheus.CounterVec
}

// NewTasks creates the task metrics and registers them with reg.
func NewTasks(reg prometheus.Registerer) *Tasks {
	t := &Tasks{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plugs_task_runs_total",
			Help: "Runs of task plugs, by result: success (exit 0), failure (another exit or a signal), timeout, error (could not start).",
		}, []string{"plug", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "plugs_task_run_duration_seconds",
			Help:    "How long runs of task plugs took, from start to exit.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"plug"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "plugs_task_last_success_timestamp_seconds",
			Help: "Unix time the last successful run of the task plug ended; absent until one did (kept across daemon restarts).",
		}, []string{"plug"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plugs_task_skipped_total",
			Help: "Runs of task plugs that did not start: overlap (a scheduled run while the previous one still ran) or busy (max_concurrent and a full queue).",
		}, []string{"plug", "reason"}),
	}
	reg.MustRegister(t.runs, t.duration, t.lastSuccess, t.skipped)
	return t
}

// TaskRun counts one run.
func (t *Tasks) TaskRun(plug, result string, d time.Duration, lastSuccess time.Time) {
	t.runs.WithLabelValues(plug, result).Inc()
	t.duration.WithLabelValues(plug).Observe(d.Seconds())
	if !lastSuccess.IsZero() {
		t.lastSuccess.WithLabelValues(plug).Set(float64(lastSuccess.UnixNano()) / 1e9)
	}
}

// TaskSkipped counts a run that did not start.
func (t *Tasks) TaskSkipped(plug, reason string) {
	t.skipped.WithLabelValues(plug, reason).Inc()
}

// TaskKnown creates the series of a task plug at zero, and sets its last
// success from the history.
func (t *Tasks) TaskKnown(plug string, lastSuccess time.Time) {
	for _, r := range task.Results {
		t.runs.WithLabelValues(plug, r)
	}
	for _, r := range []string{task.SkipOverlap, task.SkipBusy} {
		t.skipped.WithLabelValues(plug, r)
	}
	t.duration.WithLabelValues(plug)
	if !lastSuccess.IsZero() {
		t.lastSuccess.WithLabelValues(plug).Set(float64(lastSuccess.UnixNano()) / 1e9)
	}
}

// TaskForget drops the series of a plug that is no longer a task.
func (t *Tasks) TaskForget(plug string) {
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{t.runs, t.duration, t.lastSuccess, t.skipped} {
		v.DeletePartialMatch(prometheus.Labels{"plug": plug})
	}
}
