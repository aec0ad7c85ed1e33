package metrics

import (
	"sync/atomic"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Source is what the metrics read at scrape time: the instances the runner
// knows and the plugins the current deployment resolved to. Both methods are
// called concurrently by scrapes and must be safe for that.
type Source interface {
	Observe() []instance.Status
	Plugins() []PluginInfo
}

// PluginInfo describes the plugin one plug runs, for plugs_plug_info.
// Source may hold credentials: they are stripped before export.
type PluginInfo struct {
	Plug, Version, Revision, Source string
}

// Broker is the MQTT connection as the metrics see it; mqtt.Publisher
// satisfies it. Dropped is cumulative.
type Broker interface {
	Connected() bool
	Dropped() uint64
}

// Option adjusts New.
type Option func(*options)

type options struct {
	procRoot string
}

// WithProcFS reads per-instance CPU and memory from a proc filesystem mounted
// at root instead of /proc (tests use a fake one).
func WithProcFS(root string) Option {
	return func(o *options) { o.procRoot = root }
}

// Metrics holds the metrics that plugs updates as things happen; the
// per-instance metrics are read from the Source at scrape time. Every method
// is safe for concurrent use.
type Metrics struct {
	reconciles        *prometheus.CounterVec
	reconcileDuration prometheus.Histogram
	reloadOK          prometheus.Gauge
	reloadTime        prometheus.Gauge
	fetchDuration     *prometheus.HistogramVec
	desired           prometheus.Gauge

	collector *collector
}

// NewRegistry returns a registry with the Go runtime and process collectors
// of the daemon itself already registered (go_*, process_*), ready for New.
// Tests that compare exact output use a bare prometheus.NewRegistry instead.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// New creates the plugs metrics and registers them with reg. It panics if
// they are already registered there, like prometheus.MustRegister.
func New(reg prometheus.Registerer, src Source, opts ...Option) *Metrics {
	o := options{procRoot: "/proc"}
	for _, opt := range opts {
		opt(&o)
	}
	m := &Metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plugs_reconcile_total",
			Help: "Reconciles run, by result (success, error).",
		}, []string{"result"}),
		reconcileDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "plugs_reconcile_duration_seconds",
			Help:    "Time a reconcile took, fetching included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plugs_config_last_reload_successful",
			Help: "Whether the last attempt to load the deployment succeeded (1) or failed (0).",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plugs_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful load of the deployment.",
		}),
		fetchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "plugs_fetch_duration_seconds",
			Help:    "Time fetching (and building) one plug's plugin took.",
			Buckets: []float64{.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"plug"}),
		desired: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "plugs_instances_desired",
			Help: "Instances the current deployment declares.",
		}),
		collector: newCollector(src, o.procRoot),
	}
	for _, r := range []string{resultSuccess, resultError} {
		m.reconciles.WithLabelValues(r)
	}
	reg.MustRegister(m.reconciles, m.reconcileDuration, m.reloadOK, m.reloadTime,
		m.fetchDuration, m.desired, m.collector)
	return m
}

const (
	resultSuccess = "success"
	resultError   = "error"
)

// ReconcileDone records one reconcile: how long it took and whether it failed.
func (m *Metrics) ReconcileDone(d time.Duration, err error) {
	result := resultSuccess
	if err != nil {
		result = resultError
	}
	m.reconciles.WithLabelValues(result).Inc()
	m.reconcileDuration.Observe(d.Seconds())
}

// ConfigReloaded records an attempt to load the deployment at time at.
func (m *Metrics) ConfigReloaded(ok bool, at time.Time) {
	if !ok {
		m.reloadOK.Set(0)
		return
	}
	m.reloadOK.Set(1)
	m.reloadTime.Set(float64(at.UnixNano()) / 1e9)
}

// FetchDone records how long fetching one plug took.
func (m *Metrics) FetchDone(plug string, d time.Duration) {
	m.fetchDuration.WithLabelValues(plug).Observe(d.Seconds())
}

// SetDesired sets how many instances the deployment declares, to compare with
// how many are up.
func (m *Metrics) SetDesired(n int) { m.desired.Set(float64(n)) }

// SetBrokerConnected sets plugs_broker_connected. It is ignored once
// WatchBroker was called.
func (m *Metrics) SetBrokerConnected(ok bool) { m.collector.connected.Store(ok) }

// BrokerDropped adds n to plugs_broker_dropped_messages_total. It is ignored
// once WatchBroker was called.
func (m *Metrics) BrokerDropped(n uint64) { m.collector.dropped.Add(n) }

// WatchBroker makes scrapes read the broker metrics from b (for example an
// *mqtt.Publisher) instead of SetBrokerConnected and BrokerDropped.
func (m *Metrics) WatchBroker(b Broker) { m.collector.broker.Store(&b) }

// compile-time check that the collector keeps the registry contract.
var _ prometheus.Collector = (*collector)(nil)

// brokerState is the fallback when no Broker is watched.
type brokerState struct {
	connected atomic.Bool
	dropped   atomic.Uint64
	broker    atomic.Pointer[Broker]
}
