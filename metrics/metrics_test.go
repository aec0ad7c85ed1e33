package metrics

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeSource is a Source whose content a test sets.
type fakeSource struct {
	mu        sync.Mutex
	instances []instance.Status
	plugins   []PluginInfo
}

func (f *fakeSource) Observe() []instance.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]instance.Status(nil), f.instances...)
}

func (f *fakeSource) Plugins() []PluginInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]PluginInfo(nil), f.plugins...)
}

// writeFakeStat writes root/<pid>/stat in the kernel's format with the
// fields the collector reads.
func writeFakeStat(t *testing.T, root string, pid, pgrp int, utime, stime, cutime, cstime, rssPages int) {
	t.Helper()
	dir := filepath.Join(root, fmt.Sprint(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stat := fmt.Sprintf("%d (plug (x)) S 1 %d %d 0 -1 0 0 0 0 0 %d %d %d %d 20 0 1 0 100 1000 %d%s\n",
		pid, pgrp, pgrp, utime, stime, cutime, cstime, rssPages, strings.Repeat(" 0", 22))
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
}

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// snapshotFixture is a registry with every plugs metric in a known state.
func snapshotFixture(t *testing.T) (*prometheus.Registry, *Metrics, *fakeSource) {
	t.Helper()
	proc := t.TempDir()
	writeFakeStat(t, proc, 4242, 4242, 150, 50, 100, 0, 1000) // leader of its group
	writeFakeStat(t, proc, 4243, 4242, 100, 0, 0, 0, 500)     // its child
	writeFakeStat(t, proc, 5000, 1, 30, 20, 0, 0, 256)        // not a group leader: alone
	writeFakeStat(t, proc, 5001, 1, 999, 999, 0, 0, 999)      // same group, not counted

	src := &fakeSource{
		instances: []instance.Status{
			{ID: instance.ID{Plug: "heart-rate", Instance: "patient-17"}, State: instance.StateRunning,
				PID: 4242, StartedAt: t0, Restarts: 2},
			{ID: instance.ID{Plug: "heart-rate", Instance: "patient-22"}, State: instance.StateBackoff,
				Restarts: 7},
			{ID: instance.ID{Plug: "bridge", Instance: "default"}, State: instance.StateRunning,
				PID: 5000, StartedAt: t0.Add(time.Second)},
			// A duplicate must not break the scrape.
			{ID: instance.ID{Plug: "bridge", Instance: "default"}, State: instance.StateFailed},
		},
		plugins: []PluginInfo{
			{Plug: "heart-rate", Version: "1.2.0", Revision: "3f2c1a9e0b7d4c5a8e6f1b2d3c4a5e6f7a8b9c0d",
				Source: "git::https://alice-user:s3cret@git.example.org/acme/heart-rate.git//sub?ref=v1.2.0&sshkey=c2VjcmV0"},
			{Plug: "bridge", Version: "", Revision: "abc123", Source: "./plugins/bridge"},
		},
	}
	reg := prometheus.NewRegistry()
	m := New(reg, src, WithProcFS(proc))
	m.ReconcileDone(1500*time.Millisecond, nil)
	m.ReconcileDone(20*time.Millisecond, errors.New("fetch: boom"))
	m.ConfigReloaded(true, t0)
	m.ConfigReloaded(false, t0.Add(time.Minute)) // keeps the last success time
	m.FetchDone("heart-rate", 2*time.Second)
	m.SetDesired(3)
	m.SetBrokerConnected(true)
	m.BrokerDropped(5)
	return reg, m, src
}

func TestSnapshot(t *testing.T) {
	reg, _, _ := snapshotFixture(t)
	page := os.Getpagesize()
	want := fmt.Sprintf(`
# HELP plugs_broker_connected Whether the MQTT broker connection is up (1) or not (0).
# TYPE plugs_broker_connected gauge
plugs_broker_connected 1
# HELP plugs_broker_dropped_messages_total MQTT messages dropped because the publish queue was full.
# TYPE plugs_broker_dropped_messages_total counter
plugs_broker_dropped_messages_total 5
# HELP plugs_config_last_reload_success_timestamp_seconds Unix time of the last successful load of the deployment.
# TYPE plugs_config_last_reload_success_timestamp_seconds gauge
plugs_config_last_reload_success_timestamp_seconds 1.704164645e+09
# HELP plugs_config_last_reload_successful Whether the last attempt to load the deployment succeeded (1) or failed (0).
# TYPE plugs_config_last_reload_successful gauge
plugs_config_last_reload_successful 0
# HELP plugs_instance_cpu_seconds_total User and system CPU time of the instance's process group, reaped children included.
# TYPE plugs_instance_cpu_seconds_total counter
plugs_instance_cpu_seconds_total{instance="default",plug="bridge"} 0.5
plugs_instance_cpu_seconds_total{instance="patient-17",plug="heart-rate"} 4
# HELP plugs_instance_resident_memory_bytes Resident memory of the instance's process group.
# TYPE plugs_instance_resident_memory_bytes gauge
plugs_instance_resident_memory_bytes{instance="default",plug="bridge"} %d
plugs_instance_resident_memory_bytes{instance="patient-17",plug="heart-rate"} %d
# HELP plugs_instance_restarts_total Times the instance's process was restarted after it exited.
# TYPE plugs_instance_restarts_total counter
plugs_instance_restarts_total{instance="default",plug="bridge"} 0
plugs_instance_restarts_total{instance="patient-17",plug="heart-rate"} 2
plugs_instance_restarts_total{instance="patient-22",plug="heart-rate"} 7
# HELP plugs_instance_start_time_seconds Unix time the instance's current process started; absent while none runs.
# TYPE plugs_instance_start_time_seconds gauge
plugs_instance_start_time_seconds{instance="default",plug="bridge"} 1.704164646e+09
plugs_instance_start_time_seconds{instance="patient-17",plug="heart-rate"} 1.704164645e+09
# HELP plugs_instance_state The instance's lifecycle state: 1 for the current state, 0 for the others.
# TYPE plugs_instance_state gauge
plugs_instance_state{instance="default",plug="bridge",state="backoff"} 0
plugs_instance_state{instance="default",plug="bridge",state="failed"} 0
plugs_instance_state{instance="default",plug="bridge",state="needs-setup"} 0
plugs_instance_state{instance="default",plug="bridge",state="running"} 1
plugs_instance_state{instance="default",plug="bridge",state="starting"} 0
plugs_instance_state{instance="default",plug="bridge",state="stopped"} 0
plugs_instance_state{instance="default",plug="bridge",state="stopping"} 0
plugs_instance_state{instance="patient-17",plug="heart-rate",state="backoff"} 0
plugs_instance_state{instance="patient-17",plug="heart-rate",state="failed"} 0
plugs_instance_state{instance="patient-17",plug="heart-rate",state="needs-setup"} 0
plugs_instance_state{instance="patient-17",plug="heart-rate",state="running"} 1
plugs_instance_state{instance="patient-17",plug="heart-rate",state="starting"} 0
plugs_instance_state{instance="patient-17",plug="heart-rate",state="stopped"} 0
plugs_instance_state{instance="patient-17",plug="heart-rate",state="stopping"} 0
plugs_instance_state{instance="patient-22",plug="heart-rate",state="backoff"} 1
plugs_instance_state{instance="patient-22",plug="heart-rate",state="failed"} 0
plugs_instance_state{instance="patient-22",plug="heart-rate",state="needs-setup"} 0
plugs_instance_state{instance="patient-22",plug="heart-rate",state="running"} 0
plugs_instance_state{instance="patient-22",plug="heart-rate",state="starting"} 0
plugs_instance_state{instance="patient-22",plug="heart-rate",state="stopped"} 0
plugs_instance_state{instance="patient-22",plug="heart-rate",state="stopping"} 0
# HELP plugs_instance_up Whether the instance's process is running (1) or not (0).
# TYPE plugs_instance_up gauge
plugs_instance_up{instance="default",plug="bridge"} 1
plugs_instance_up{instance="patient-17",plug="heart-rate"} 1
plugs_instance_up{instance="patient-22",plug="heart-rate"} 0
# HELP plugs_instances_desired Instances the current deployment declares.
# TYPE plugs_instances_desired gauge
plugs_instances_desired 3
# HELP plugs_plug_info The plugin each plug runs: always 1, the labels carry the version, revision and source (credentials stripped).
# TYPE plugs_plug_info gauge
plugs_plug_info{plug="bridge",revision="abc123",source="./plugins/bridge",version=""} 1
plugs_plug_info{plug="heart-rate",revision="3f2c1a9e0b7d4c5a8e6f1b2d3c4a5e6f7a8b9c0d",source="git::https://git.example.org/acme/heart-rate.git//sub",version="1.2.0"} 1
# HELP plugs_reconcile_total Reconciles run, by result (success, error).
# TYPE plugs_reconcile_total counter
plugs_reconcile_total{result="error"} 1
plugs_reconcile_total{result="success"} 1
`, 256*page, 1500*page)
	names := []string{
		"plugs_broker_connected", "plugs_broker_dropped_messages_total",
		"plugs_config_last_reload_success_timestamp_seconds", "plugs_config_last_reload_successful",
		"plugs_instance_cpu_seconds_total", "plugs_instance_resident_memory_bytes",
		"plugs_instance_restarts_total", "plugs_instance_start_time_seconds", "plugs_instance_state",
		"plugs_instance_up", "plugs_instances_desired", "plugs_plug_info", "plugs_reconcile_total",
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// The histograms: counts and sums, their buckets being Prometheus's business.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				got[mf.GetName()] = fmt.Sprintf("%d %.3f %v", h.GetSampleCount(), h.GetSampleSum(), m.GetLabel())
			}
		}
	}
	for name, w := range map[string]string{
		"plugs_reconcile_duration_seconds": "2 1.520 []",
		"plugs_fetch_duration_seconds":     `1 2.000 [name:"plug" value:"heart-rate"]`,
	} {
		if strings.Join(strings.Fields(got[name]), " ") != w {
			t.Errorf("%s = %q, want %q", name, got[name], w)
		}
	}
}

func TestLint(t *testing.T) {
	reg, _, _ := snapshotFixture(t)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// The runtime registry must lint clean too.
	problems, err = testutil.GatherAndLint(NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint runtime: %s: %s", p.Metric, p.Text)
	}
}

func TestNoSecretsExported(t *testing.T) {
	reg, _, _ := snapshotFixture(t)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprint(mfs)
	for _, secret := range []string{"s3cret", "alice-user", "c2VjcmV0", "sshkey"} {
		if strings.Contains(text, secret) {
			t.Errorf("exported metrics contain %q", secret)
		}
	}
}

func TestEmptySource(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, &fakeSource{})
	// Only the unlabelled and pre-initialised series exist before anything happens.
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 8 {
		t.Errorf("GatherAndCount = %d, %v; want 8", n, err)
	}
}

func TestWatchBroker(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, &fakeSource{})
	m.SetBrokerConnected(true)
	m.WatchBroker(fakeBroker{connected: false, dropped: 42})
	want := `
# HELP plugs_broker_connected Whether the MQTT broker connection is up (1) or not (0).
# TYPE plugs_broker_connected gauge
plugs_broker_connected 0
# HELP plugs_broker_dropped_messages_total MQTT messages dropped because the publish queue was full.
# TYPE plugs_broker_dropped_messages_total counter
plugs_broker_dropped_messages_total 42
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"plugs_broker_connected", "plugs_broker_dropped_messages_total"); err != nil {
		t.Error(err)
	}
}

type fakeBroker struct {
	connected bool
	dropped   uint64
}

func (b fakeBroker) Connected() bool { return b.connected }
func (b fakeBroker) Dropped() uint64 { return b.dropped }

func TestRedactSource(t *testing.T) {
	for in, want := range map[string]string{
		"./plugins/heart-rate":                                "./plugins/heart-rate",
		"./uploads/heart-rate.zip":                            "./uploads/heart-rate.zip",
		"git::https://git.example.org/acme/x.git":             "git::https://git.example.org/acme/x.git",
		"git::https://u:p@git.example.org/acme/x.git//cmd/b":  "git::https://git.example.org/acme/x.git//cmd/b",
		"https://tok@example.org/x.zip?X-Amz-Signature=abc#f": "https://example.org/x.zip",
		"git::ssh://git@example.org/acme/x.git":               "git::ssh://example.org/acme/x.git",
		"git@example.org:acme/x.git":                          "git@example.org:acme/x.git",
		"https://u:pa/ss@example.org/x.git":                   "https://example.org/x.git",
		"git::https://u:p%zz@example.org/x.git":               "git::https://example.org/x.git",
	} {
		if got := RedactSource(in); got != want {
			t.Errorf("RedactSource(%q) = %q, want %q", in, got, want)
		}
	}
}
