package metrics

import (
	"github.com/plugs-dev/plugs/instance"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat on Linux.
const userHZ = 100

// collector reads the Source at scrape time. It emits the per-instance and
// per-plug series and the broker state.
type collector struct {
	src      Source
	procRoot string
	brokerState

	up, state, restarts, startTime, cpu, rss, info, connectedDesc, droppedDesc *prometheus.Desc
	oomKilled                                                                  *prometheus.Desc // cgroup.go
}

func newCollector(src Source, procRoot string) *collector {
	inst := []string{"plug", "instance"}
	return &collector{
		src:      src,
		procRoot: procRoot,
		up: prometheus.NewDesc("plugs_instance_up",
			"Whether the instance's process is running (1) or not (0).", inst, nil),
		state: prometheus.NewDesc("plugs_instance_state",
			"The instance's lifecycle state: 1 for the current state, 0 for the others.",
			append(inst, "state"), nil),
		restarts: prometheus.NewDesc("plugs_instance_restarts_total",
			"Times the instance's process was restarted after it exited.", inst, nil),
		startTime: prometheus.NewDesc("plugs_instance_start_time_seconds",
			"Unix time the instance's current process started; absent while none runs.", inst, nil),
		cpu: prometheus.NewDesc("plugs_instance_cpu_seconds_total",
			"User and system CPU time of the instance's process group, reaped children included.", inst, nil),
		rss: prometheus.NewDesc("plugs_instance_resident_memory_bytes",
			"Resident memory of the instance's process group.", inst, nil),
		info: prometheus.NewDesc("plugs_plug_info",
			"The plugin each plug runs: always 1, the labels carry the version, revision and source (credentials stripped).",
			[]string{"plug", "version", "revision", "source"}, nil),
		connectedDesc: prometheus.NewDesc("plugs_broker_connected",
			"Whether the MQTT broker connection is up (1) or not (0).", nil, nil),
		droppedDesc: prometheus.NewDesc("plugs_broker_dropped_messages_total",
			"MQTT messages dropped because the publish queue was full.", nil, nil),
		oomKilled: oomKilledDesc(inst),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.state, c.restarts, c.startTime, c.cpu, c.rss,
		c.info, c.connectedDesc, c.droppedDesc, c.oomKilled} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.collectInstances(ch)
	c.collectPlugins(ch)

	connected, dropped := c.connected.Load(), c.dropped.Load()
	if b := c.broker.Load(); b != nil {
		connected, dropped = (*b).Connected(), (*b).Dropped()
	}
	ch <- prometheus.MustNewConstMetric(c.connectedDesc, prometheus.GaugeValue, boolValue(connected))
	ch <- prometheus.MustNewConstMetric(c.droppedDesc, prometheus.CounterValue, float64(dropped))
}

func (c *collector) collectInstances(ch chan<- prometheus.Metric) {
	statuses := c.src.Observe()
	var pids []int
	for _, st := range statuses {
		if st.PID > 0 {
			pids = append(pids, st.PID)
		}
	}
	usage := readUsage(c.procRoot, pids)

	seen := make(map[instance.ID]bool, len(statuses))
	for _, st := range statuses {
		if seen[st.ID] {
			continue // a duplicate would fail the whole scrape
		}
		seen[st.ID] = true
		plug, inst := st.ID.Plug, st.ID.Instance

		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue,
			boolValue(st.State == instance.StateRunning), plug, inst)
		known := false
		for _, s := range instance.States {
			known = known || s == st.State
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue,
				boolValue(s == st.State), plug, inst, string(s))
		}
		if !known && st.State != "" {
			ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, 1, plug, inst, string(st.State))
		}
		ch <- prometheus.MustNewConstMetric(c.restarts, prometheus.CounterValue, float64(st.Restarts), plug, inst)
		if !st.StartedAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.startTime, prometheus.GaugeValue,
				float64(st.StartedAt.UnixNano())/1e9, plug, inst)
		}
		c.collectOOM(ch, st)
		if u, ok := c.cgroupUsage(st); ok {
			ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, u.cpuSeconds, plug, inst)
			ch <- prometheus.MustNewConstMetric(c.rss, prometheus.GaugeValue, u.rssBytes, plug, inst)
		} else if u, ok := usage[st.PID]; ok && st.PID > 0 {
			ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, u.cpuSeconds, plug, inst)
			ch <- prometheus.MustNewConstMetric(c.rss, prometheus.GaugeValue, u.rssBytes, plug, inst)
		}
	}
}

func (c *collector) collectPlugins(ch chan<- prometheus.Metric) {
	seen := make(map[string]bool)
	for _, p := range c.src.Plugins() {
		if seen[p.Plug] {
			continue
		}
		seen[p.Plug] = true
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1,
			p.Plug, p.Version, p.Revision, RedactSource(p.Source))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// usage is the CPU and memory of one instance.
type usage struct {
	cpuSeconds float64
	rssBytes   float64
}

// readUsage returns the usage of each pid that exists. When a pid leads its
// process group (the runner starts every instance in its own group) the
// usage is summed over the whole group, so that a shell plugin's children
// count; otherwise it is the process alone. CPU time includes the reaped
// children's (cutime, cstime), so it keeps growing when children come and go.
// /proc is scanned once per call, and not at all when pids is empty; a
// process that vanishes meanwhile is skipped, and an unreadable /proc yields
// no usage rather than a failed scrape.
func readUsage(root string, pids []int) map[int]usage {
	if len(pids) == 0 {
		return nil
	}
	fs, err := procfs.NewFS(root)
	if err != nil {
		return nil
	}
	procs, err := fs.AllProcs()
	if err != nil {
		return nil
	}
	want := make(map[int]bool, len(pids))
	for _, pid := range pids {
		want[pid] = true
	}
	own := make(map[int]procfs.ProcStat, len(pids))
	group := make(map[int]usage)
	for _, p := range procs {
		st, err := p.Stat()
		if err != nil {
			continue
		}
		if want[st.PID] {
			own[st.PID] = st
		}
		u := group[st.PGRP]
		u.cpuSeconds += statCPU(st)
		u.rssBytes += float64(st.ResidentMemory())
		group[st.PGRP] = u
	}
	out := make(map[int]usage, len(own))
	for pid, st := range own {
		if st.PGRP == pid {
			out[pid] = group[pid]
		} else {
			out[pid] = usage{cpuSeconds: statCPU(st), rssBytes: float64(st.ResidentMemory())}
		}
	}
	return out
}

func statCPU(st procfs.ProcStat) float64 {
	return float64(int64(st.UTime)+int64(st.STime)+int64(st.CUTime)+int64(st.CSTime)) / userHZ
}
