package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plugs-dev/plugs/instance"
)

// HealthSource is what the health metrics read at scrape time.
type HealthSource interface {
	// InstanceHealth returns the health of every instance the daemon runs.
	InstanceHealth() []InstanceHealth
}

// InstanceHealth is one instance's health, as the metrics show it.
type InstanceHealth struct {
	ID instance.ID
	// Healthy: the process runs, is ready, and no check fails (an instance
	// without checks: its process runs).
	Healthy bool
	// LastData is when the instance last published on its data topic;
	// zero when it never did (then no series is exported).
	LastData time.Time
	Checks   []CheckHealth
}

// CheckHealth is one check of an instance.
type CheckHealth struct {
	Name, Type    string
	Passing       bool
	Passes, Fails uint64
}

// Rollout results, the result label of plugs_rollouts_total.
const (
	RolloutSuccess  = "success"  // every batch became healthy and stayed so
	RolloutFailed   = "failed"   // a batch missed its healthy deadline; nothing reverted
	RolloutReverted = "reverted" // a batch missed its deadline and the plug went back to its last healthy revision
)

// Health holds the health collectors: read from a HealthSource at scrape
// time, plus the probe-duration histogram and the rollout counter, which
// the daemon feeds.
type Health struct {
	probeDuration *prometheus.HistogramVec
	rollouts      *prometheus.CounterVec
}

// NewHealth registers the health metrics on reg.
func NewHealth(reg prometheus.Registerer, src HealthSource) *Health {
	h := &Health{
		probeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "plugs_check_duration_seconds",
			Help:    "Time one active health check (exec, http, tcp) took, by check type.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"type"}),
		rollouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plugs_rollouts_total",
			Help: "Health-gated rollouts that ended, by result (success, failed, reverted).",
		}, []string{"result"}),
	}
	for _, r := range []string{RolloutSuccess, RolloutFailed, RolloutReverted} {
		h.rollouts.WithLabelValues(r)
	}
	reg.MustRegister(h.probeDuration, h.rollouts, &healthCollector{src: src})
	return h
}

// ProbeDone records the duration of one active probe.
func (h *Health) ProbeDone(checkType string, d time.Duration) {
	h.probeDuration.WithLabelValues(checkType).Observe(d.Seconds())
}

// RolloutDone counts a rollout that ended with result.
func (h *Health) RolloutDone(result string) { h.rollouts.WithLabelValues(result).Inc() }

var (
	healthyDesc = prometheus.NewDesc("plugs_instance_healthy",
		"Whether the instance runs, is ready and passes every health check (1) or not (0); an instance without checks is healthy while it runs.",
		[]string{"plug", "instance"}, nil)
	lastDataDesc = prometheus.NewDesc("plugs_instance_last_data_timestamp_seconds",
		"Unix time of the instance's last message on its data topic (absent until the first).",
		[]string{"plug", "instance"}, nil)
	checkPassingDesc = prometheus.NewDesc("plugs_check_passing",
		"Whether the health check passes (1) or not (0).",
		[]string{"plug", "instance", "check", "type"}, nil)
	checkResultsDesc = prometheus.NewDesc("plugs_check_results_total",
		"Results of the health check since the daemon started, by result (pass, fail).",
		[]string{"plug", "instance", "check", "type", "result"}, nil)
)

type healthCollector struct{ src HealthSource }

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{healthyDesc, lastDataDesc, checkPassingDesc, checkResultsDesc} {
		ch <- d
	}
}

func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	for _, ih := range c.src.InstanceHealth() {
		p, i := ih.ID.Plug, ih.ID.Instance
		ch <- prometheus.MustNewConstMetric(healthyDesc, prometheus.GaugeValue, boolValue(ih.Healthy), p, i)
		if !ih.LastData.IsZero() {
			ch <- prometheus.MustNewConstMetric(lastDataDesc, prometheus.GaugeValue, float64(ih.LastData.UnixNano())/1e9, p, i)
		}
		for _, ck := range ih.Checks {
			ch <- prometheus.MustNewConstMetric(checkPassingDesc, prometheus.GaugeValue, boolValue(ck.Passing), p, i, ck.Name, ck.Type)
			ch <- prometheus.MustNewConstMetric(checkResultsDesc, prometheus.CounterValue, float64(ck.Passes), p, i, ck.Name, ck.Type, "pass")
			ch <- prometheus.MustNewConstMetric(checkResultsDesc, prometheus.CounterValue, float64(ck.Fails), p, i, ck.Name, ck.Type, "fail")
		}
	}
}
