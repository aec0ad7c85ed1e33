package metrics

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/promtest"
	"github.com/plugs-dev/plugs/task"
)

// liveSource is a Source over real processes, with one instance that keeps
// crashing: its restart count grows at every scrape.
type liveSource struct {
	running  map[string]int // instance name of plug heart-rate → pid
	crashing atomic.Int64
	tasks    *Tasks // when set, every scrape records task runs, as a called task would
}

func (s *liveSource) Observe() []instance.Status {
	if s.tasks != nil {
		n := s.crashing.Load()
		s.tasks.TaskRun("notify-sms", task.ResultSuccess, time.Duration(100+n%50)*time.Millisecond, time.Now())
		s.tasks.TaskRun("notify-sms", task.ResultFailure, 2*time.Second, time.Now())
		s.tasks.TaskSkipped("notify-sms", task.SkipBusy)
	}
	var out []instance.Status
	for name, pid := range s.running {
		out = append(out, instance.Status{
			ID:    instance.ID{Plug: "heart-rate", Instance: name},
			State: instance.StateRunning, PID: pid, StartedAt: time.Now().Add(-time.Minute),
		})
	}
	out = append(out, instance.Status{
		ID:    instance.ID{Plug: "bridge", Instance: "default"},
		State: instance.StateBackoff, Restarts: int(s.crashing.Add(1)),
	})
	return out
}

func (s *liveSource) Plugins() []PluginInfo {
	return []PluginInfo{
		{Plug: "heart-rate", Version: "1.2.0", Revision: "3f2c1a9e0b7d4c5a8e6f1b2d3c4a5e6f7a8b9c0d",
			Source: "git::https://git.example.org/acme/heart-rate.git"},
		{Plug: "bridge", Version: "", Revision: "9a8b", Source: "./plugins/bridge"},
	}
}

// TestDashboardQueriesReturnData lets a real Prometheus scrape a metrics
// server over real processes, then checks that every query of the Grafana
// dashboard returns data.
func TestDashboardQueriesReturnData(t *testing.T) {
	promtest.Binary(t, "prometheus")
	src := &liveSource{running: map[string]int{
		"patient-17": startChild(t, "8", 0).Process.Pid,
		"patient-22": startChild(t, "8", 0).Process.Pid,
	}}
	reg := NewRegistry()
	m := New(reg, src)
	m.ReconcileDone(300*time.Millisecond, nil)
	m.ReconcileDone(time.Second, context.DeadlineExceeded)
	m.ConfigReloaded(true, time.Now())
	m.FetchDone("heart-rate", 2*time.Second)
	m.FetchDone("bridge", time.Second)
	m.SetDesired(3)
	m.SetBrokerConnected(true)
	h := NewHealth(reg, fakeHealth{{ID: instance.ID{Plug: "heart-rate", Instance: "patient-17"}, Healthy: true, LastData: time.Now(),
		Checks: []CheckHealth{{Name: "fresh", Type: "data", Passing: true, Passes: 3}}}})
	h.RolloutDone(RolloutSuccess)
	src.tasks = NewTasks(reg)
	src.tasks.TaskKnown("notify-sms", time.Time{})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ServeListener(ctx, l, "", Handler(reg, nil), nil) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	prom := promtest.Start(t, []string{addr})
	wctx, wcancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer wcancel()
	if err := prom.WaitForTarget(wctx, addr); err != nil {
		t.Fatalf("%v\n%s", err, prom.Log())
	}

	prom.CheckDashboard(wctx, t, filepath.Join("..", "examples", "grafana", "plugs.json"), addr)

	// The figures are the processes' own: 8 MiB held by each.
	r, err := prom.Query(wctx, `plugs_instance_resident_memory_bytes{exported_instance="patient-17"}`)
	if err != nil || len(r.Samples) != 1 || r.Samples[0].Value < 8<<20 {
		t.Errorf("resident memory of patient-17 through Prometheus = %+v, %v; want one sample >= 8 MiB", r, err)
	}
}

// TestAlertRules checks the example alerting rules and Prometheus
// configuration, and runs the rules' unit tests.
func TestAlertRules(t *testing.T) {
	promtool := promtest.Binary(t, "promtool")
	dir := filepath.Join("..", "examples", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"check", "config", "prometheus.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
