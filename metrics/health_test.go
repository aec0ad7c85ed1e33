package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/plugs-dev/plugs/instance"
)

type fakeHealth []InstanceHealth

func (f fakeHealth) InstanceHealth() []InstanceHealth { return f }

func TestHealthMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := NewHealth(reg, fakeHealth{
		{ID: instance.ID{Plug: "hr", Instance: "p17"}, Healthy: true, LastData: time.Unix(1700000000, 500000000),
			Checks: []CheckHealth{{Name: "fresh", Type: "data", Passing: true, Passes: 12, Fails: 1}}},
		{ID: instance.ID{Plug: "bridge", Instance: "default"}},
	})
	h.ProbeDone("http", 30*time.Millisecond)
	h.RolloutDone(RolloutReverted)
	want := `
# HELP plugs_check_passing Whether the health check passes (1) or not (0).
# TYPE plugs_check_passing gauge
plugs_check_passing{check="fresh",instance="p17",plug="hr",type="data"} 1
# HELP plugs_check_results_total Results of the health check since the daemon started, by result (pass, fail).
# TYPE plugs_check_results_total counter
plugs_check_results_total{check="fresh",instance="p17",plug="hr",result="fail",type="data"} 1
plugs_check_results_total{check="fresh",instance="p17",plug="hr",result="pass",type="data"} 12
# HELP plugs_instance_healthy Whether the instance runs, is ready and passes every health check (1) or not (0); an instance without checks is healthy while it runs.
# TYPE plugs_instance_healthy gauge
plugs_instance_healthy{instance="default",plug="bridge"} 0
plugs_instance_healthy{instance="p17",plug="hr"} 1
# HELP plugs_instance_last_data_timestamp_seconds Unix time of the instance's last message on its data topic (absent until the first).
# TYPE plugs_instance_last_data_timestamp_seconds gauge
plugs_instance_last_data_timestamp_seconds{instance="p17",plug="hr"} 1.7000000005e+09
# HELP plugs_rollouts_total Health-gated rollouts that ended, by result (success, failed, reverted).
# TYPE plugs_rollouts_total counter
plugs_rollouts_total{result="failed"} 0
plugs_rollouts_total{result="reverted"} 1
plugs_rollouts_total{result="success"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"plugs_check_passing", "plugs_check_results_total", "plugs_instance_healthy",
		"plugs_instance_last_data_timestamp_seconds", "plugs_rollouts_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "plugs_check_duration_seconds"); n != 1 {
		t.Errorf("%d duration series", n)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}
