package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plugs-dev/plugs/instance"
)

// CgroupUsage is an optional extension of Source: an instance's CPU time
// and memory from its cgroup (package sandbox). When ok, they replace the
// sum of its process group read from /proc: the cgroup also counts what
// left the group, and is cheaper to read.
type CgroupUsage interface {
	Usage(id instance.ID) (cpu time.Duration, memory uint64, ok bool)
}

func oomKilledDesc(labels []string) *prometheus.Desc {
	return prometheus.NewDesc("plugs_instance_oom_killed",
		"Whether the instance's last process was killed at its cgroup memory limit (1) or not (0).", labels, nil)
}

// cgroupUsage is the instance's usage from its cgroup, when the source has it.
func (c *collector) cgroupUsage(st instance.Status) (usage, bool) {
	cu, ok := c.src.(CgroupUsage)
	if !ok || st.PID == 0 {
		return usage{}, false
	}
	cpu, mem, ok := cu.Usage(st.ID)
	if !ok {
		return usage{}, false
	}
	return usage{cpuSeconds: cpu.Seconds(), rssBytes: float64(mem)}, true
}

func (c *collector) collectOOM(ch chan<- prometheus.Metric, st instance.Status) {
	v := 0.0
	if st.LastExit != nil && st.LastExit.OOMKilled {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(c.oomKilled, prometheus.GaugeValue, v, st.ID.Plug, st.ID.Instance)
}
