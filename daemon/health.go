package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/health"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/metrics"
	"github.com/plugs-dev/plugs/mqtt"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/runner"
	"github.com/plugs-dev/plugs/spec"
)

// The daemon's health side: the checks of every instance (package health),
// fed by the runner's status changes and the broker's data topics, and
// shown in status, MQTT state messages and metrics.

var (
	_ metrics.HealthSource = (*daemonHealth)(nil)
	_ health.CommandRunner = (*daemonHealth)(nil)
	_ instance.ReadyWaiter = (*daemonHealth)(nil)
)

// daemonHealth joins the health manager to the daemon.
type daemonHealth struct {
	mgr     *health.Manager
	metrics *metrics.Health
	// publish re-sends an instance's MQTT state with its new health.
	publish func(instance.Status)

	// runOnce runs exec checks (the runner's RunOnce).
	runOnce func(context.Context, runner.Once) (runner.Result, error)
	// live is the runner's current status of an instance (runner.Status):
	// what readiness waits trust, since last, fed by the Observer, may lag.
	live func(instance.ID) (instance.Status, bool)

	mu   sync.Mutex
	last map[instance.ID]toldStatus    // what the latest status the runner reported said
	cfgs map[instance.ID]health.Config // the configuration of every desired instance
	// deadlines bound the wait for readiness before post_start
	// (reconcile.ReadyDeadline of each desired instance).
	deadlines map[instance.ID]time.Duration
	// wake is closed, and replaced, at every status or health change:
	// what AwaitReady waits on.
	wake chan struct{}
	// unready says which processes were started although a dependency
	// was not ready (reconcile.Outcome.NotReady), shown as their status
	// reason while they run.
	unready map[instance.ID]unreadyStart
}

// unreadyStart is a process started before its dependency was ready.
type unreadyStart struct {
	pid int
	why string
}

// startHealth makes the health manager. restart is check_restart's effect
// (the runner's RestartUnhealthy, set once the runner exists).
func (d *daemon) startHealth(reg prometheus.Registerer, restart func(context.Context, instance.ID, string) error) {
	h := &daemonHealth{last: map[instance.ID]toldStatus{}, cfgs: map[instance.ID]health.Config{},
		deadlines: map[instance.ID]time.Duration{}, wake: make(chan struct{}), unready: map[instance.ID]unreadyStart{}}
	h.runOnce = func(ctx context.Context, o runner.Once) (runner.Result, error) { return d.runner.RunOnce(ctx, o) }
	h.live = func(id instance.ID) (instance.Status, bool) {
		if d.runner == nil {
			return instance.Status{}, false
		}
		return d.runner.Status(id)
	}
	h.metrics = metrics.NewHealth(reg, h)
	h.publish = d.publishState
	h.mgr = health.New(health.Options{
		StateDir: d.opts.StateDir,
		Logger:   d.log,
		Restart: func(id instance.ID, reason string) {
			d.log.Warn("instance unhealthy, restarting", "plug", id.Plug, "instance", id.Instance, "reason", reason)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := restart(ctx, id, reason); err != nil {
				d.log.Warn("restart unhealthy instance", "plug", id.Plug, "instance", id.Instance, "err", err)
			}
		},
		Prober:   &health.Probes{Exec: h},
		OnChange: h.changed,
		OnProbe:  h.metrics.ProbeDone,
	})
	d.health = h
}

// watchData feeds data messages to the checks and the data age.
func (h *daemonHealth) watchData(pub *mqtt.Publisher) {
	pub.WatchData(func(plug, inst string, at time.Time) {
		h.mgr.Data(instance.ID{Plug: plug, Instance: inst}, at)
	})
}

// observe takes a runner status change. The health manager learns of a
// new process before last shows it, so that AwaitReady never takes the
// readiness of the process before for that of a new pid.
//
// An instance no longer desired (configure, which comes before the apply
// that stops it, has dropped it) is forgotten rather than recorded: its
// last notices (stopping, stopped) would otherwise keep a health series of
// it on /metrics after it is gone.
func (h *daemonHealth) observe(st instance.Status) {
	h.mgr.Observe(st.ID, st.State == instance.StateRunning, st.PID, st.StartedAt)
	h.mu.Lock()
	if _, desired := h.deadlines[st.ID]; desired {
		h.last[st.ID] = toldOf(st)
	} else {
		delete(h.last, st.ID)
	}
	h.wakeLocked()
	h.mu.Unlock()
}

// toldStatus is what the health side keeps of the latest status the runner
// reported for an instance: what readiness compares and what a health
// change republishes (publishState reads no other field), not the whole
// Status with its Spec inline (~750 bytes each, 0.75 MB at 1,000).
type toldStatus struct {
	id                instance.ID
	state             instance.State
	pid, restarts     int
	since             time.Time
	version, revision string
	lastExit          *instance.Exit
}

func toldOf(st instance.Status) toldStatus {
	return toldStatus{id: st.ID, state: st.State, pid: st.PID, restarts: st.Restarts, since: st.Since,
		version: st.Spec.Version, revision: st.Spec.Revision, lastExit: st.LastExit}
}

// status is the Status publishState needs.
func (t toldStatus) status() instance.Status {
	st := instance.Status{ID: t.id, State: t.state, PID: t.pid, Restarts: t.restarts, Since: t.since, LastExit: t.lastExit}
	st.Spec.ID, st.Spec.Version, st.Spec.Revision = t.id, t.version, t.revision
	return st
}

// changed republishes the state of an instance whose health changed.
func (h *daemonHealth) changed(id instance.ID) {
	h.mu.Lock()
	t, ok := h.last[id]
	h.wakeLocked()
	h.mu.Unlock()
	if ok {
		h.publish(t.status())
	}
}

// wakeLocked wakes every AwaitReady.
func (h *daemonHealth) wakeLocked() {
	close(h.wake)
	h.wake = make(chan struct{})
}

// AwaitReady makes the health checks the readiness of depends_on
// (reconcile.Apply): id is ready once its process runs and every check has
// passed since it started (health.Status.Ready: at once without checks).
// A failed instance, or one waiting for plugs setup, cannot become ready
// without a change: AwaitReady says so at once.
func (h *daemonHealth) AwaitReady(ctx context.Context, id instance.ID) error {
	return h.awaitReady(ctx, id, 0)
}

// awaitReadyProcess is the runner's Options.AwaitReady, which post_start
// waits for: process pid of id is ready, within its deadline
// (reconcile.ReadyDeadline).
func (h *daemonHealth) awaitReadyProcess(ctx context.Context, id instance.ID, pid int) error {
	h.mu.Lock()
	d, ok := h.deadlines[id]
	h.mu.Unlock()
	if !ok {
		d = reconcile.DefaultReadyTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := h.awaitReady(wctx, id, pid)
	if err != nil && ctx.Err() == nil && wctx.Err() != nil {
		return fmt.Errorf("not ready after %s", d)
	}
	return err
}

// awaitReady waits until id runs (as process pid, unless 0: whichever
// process runs) and is ready. It wakes on every status and health change.
func (h *daemonHealth) awaitReady(ctx context.Context, id instance.ID, pid int) error {
	for {
		h.mu.Lock()
		wake := h.wake
		told, seen := h.last[id]
		h.mu.Unlock()
		why, final := h.notReady(id, pid, told, seen)
		switch {
		case why == "":
			return nil
		case final:
			return errors.New(why)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", why, ctx.Err())
		}
	}
}

// notReady says why id is not ready ("" when it is), and whether it cannot
// become so without a change (final). The runner's current status says
// which process runs; told is the status the health manager was last told
// of (seen: any), so that the readiness read is that of this process.
func (h *daemonHealth) notReady(id instance.ID, pid int, told toldStatus, seen bool) (why string, final bool) {
	st, ok := h.live(id)
	if pid == 0 {
		pid = st.PID
	}
	switch {
	case !ok:
		return "not started", false
	case st.State == instance.StateFailed:
		return "failed: " + st.Reason, true
	case st.State == instance.StateNeedsSetup:
		return string(st.State) + ": " + st.Reason, true
	case st.State != instance.StateRunning:
		return strings.TrimSuffix(string(st.State)+": "+st.Reason, ": "), false
	case st.PID != pid:
		return fmt.Sprintf("process %d exited", pid), false
	case !seen || told.state != instance.StateRunning || told.pid != pid:
		return "starting", false
	}
	hs, ok := h.mgr.Status(id)
	if !ok || (hs.Running && hs.Ready) {
		return "", false // no health configuration: ready once it runs
	}
	var pending []string
	for _, c := range hs.Checks {
		if !c.Passing {
			pending = append(pending, strings.TrimSuffix(c.Name+": "+c.Output, ": "))
		}
	}
	return "waiting for its checks (" + strings.Join(pending, "; ") + ")", false
}

// startedUnready records the apply's outcomes whose dependency was not
// ready (reconcile.Outcome.NotReady) against the process that runs now:
// its status reason says so while that process runs.
func (h *daemonHealth) startedUnready(res *reconcile.ApplyResult, observed []instance.Status) {
	pids := make(map[instance.ID]int, len(observed))
	for _, st := range observed {
		pids[st.ID] = st.PID
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, o := range res.Outcomes {
		switch {
		case o.Action != reconcile.Create && o.Action != reconcile.Replace:
		case o.NotReady != "" && pids[o.ID] != 0:
			h.unready[o.ID] = unreadyStart{pid: pids[o.ID], why: o.NotReady}
		default:
			delete(h.unready, o.ID)
		}
	}
}

// configure sets the checks of the desired instances before they start
// (and their readiness deadlines, from their specs), and forgets instances
// no longer desired.
func (h *daemonHealth) configure(cfgs map[instance.ID]health.Config, desired []instance.Spec) {
	deadlines := make(map[instance.ID]time.Duration, len(desired))
	for _, s := range desired {
		deadlines[s.ID] = reconcile.ReadyDeadline(s)
	}
	h.mu.Lock()
	old := h.cfgs
	h.cfgs, h.deadlines = cfgs, deadlines
	h.mu.Unlock()
	for id, cfg := range cfgs {
		if err := h.mgr.Configure(id, cfg); err != nil {
			// The instance runs anyway; its notify check will fail, and say so.
			h.mgr.Notify(id, 0, map[string]string{"STATUS": "plugs: " + err.Error()})
		}
	}
	for id := range old {
		if _, ok := cfgs[id]; !ok {
			h.mgr.Remove(id)
			h.mu.Lock()
			delete(h.last, id)
			delete(h.unready, id)
			h.mu.Unlock()
		}
	}
}

// status is the health of id, and whether it is known.
func (h *daemonHealth) status(id instance.ID) (health.Status, bool) { return h.mgr.Status(id) }

// InstanceHealth makes the daemon's health the metrics' HealthSource.
func (h *daemonHealth) InstanceHealth() []metrics.InstanceHealth {
	sts := h.mgr.Statuses()
	data := h.mgr.LastDataAll()
	h.mu.Lock()
	ids := slices.Collect(maps.Keys(h.last))
	running := make(map[instance.ID]bool, len(h.last))
	for id, st := range h.last {
		running[id] = st.state == instance.StateRunning
	}
	h.mu.Unlock()
	out := make([]metrics.InstanceHealth, 0, len(ids))
	for _, id := range ids {
		ih := metrics.InstanceHealth{ID: id, LastData: data[id], Healthy: running[id]}
		if s, ok := sts[id]; ok {
			ih.Healthy = s.Passing()
			for _, c := range s.Checks {
				ih.Checks = append(ih.Checks, metrics.CheckHealth{Name: c.Name, Type: c.Type, Passing: c.Passing, Passes: c.Passes, Fails: c.Fails})
			}
		}
		out = append(out, ih)
	}
	return out
}

func (h *daemonHealth) close() { h.mgr.Close() }

// Run runs an exec check with the runner's RunOnce: in the plugin
// directory, with the instance's environment, user and limits, its
// process group killed when the check's timeout ends ctx.
func (h *daemonHealth) Run(ctx context.Context, id instance.ID, dir string, argv, env []string) (int, []byte, error) {
	st, ok := h.live(id)
	if !ok {
		return -1, nil, errors.New("instance not running")
	}
	res, err := h.runOnce(ctx, runner.Once{Spec: st.Spec, Command: argv, TailBytes: 2 << 10, KillAfter: time.Second})
	if err != nil {
		return -1, nil, err
	}
	out := append(res.Stdout, res.Stderr...)
	return res.ExitCode, out, nil
}

// decorate adds their health to instance rows, and to a process started
// before its dependency was ready, that reason.
func (h *daemonHealth) decorate(rows []api.InstanceStatus) {
	for i := range rows {
		id := instance.ID{Plug: rows[i].Plug, Instance: rows[i].Instance}
		h.mu.Lock()
		u, ok := h.unready[id]
		h.mu.Unlock()
		if ok && u.pid == rows[i].PID && rows[i].Reason == "" {
			rows[i].Reason = u.why
		}
		s, ok := h.mgr.Status(id)
		if !ok {
			continue
		}
		ih := &api.InstanceHealth{
			Status: s.Health, Ready: s.Ready, ReadyAt: s.ReadyAt, HealthySince: s.HealthySince,
			LastFailure: s.LastFailure, NotifyStatus: s.NotifyStatus, LastData: h.mgr.LastData(id), Restarts: s.Restarts,
		}
		for _, c := range s.Checks {
			ih.Checks = append(ih.Checks, api.CheckStatus{Name: c.Name, Type: c.Type, Passing: c.Passing,
				ConsecutiveFailures: c.ConsecutiveFailures, LastResult: c.LastResult, Output: c.Output})
		}
		rows[i].Health = ih
	}
}

// healthConfigs gives every desired instance its health configuration
// (the manifest's checks, overridden or added to by the plug's) and, for a
// notify check, its NOTIFY_SOCKET (and WATCHDOG_USEC) in its environment:
// both are stable, so they change no plan. An instance without checks has
// no Secrets: they redact the output of checks, and it has none (its
// config.json is not parsed for them: at 1,000 instances, 9 of this
// function's 14 ms a load).
func healthConfigs(stateDir string, dep *spec.Deployment, manifests map[string]*spec.Manifest, desired []instance.Spec, brokerPassword string) map[instance.ID]health.Config {
	out := make(map[instance.ID]health.Config, len(desired))
	plugs := make(map[string]*spec.Plug, len(dep.Plugs))
	for _, p := range dep.Plugs {
		if _, dup := plugs[p.Name]; !dup {
			plugs[p.Name] = p // the first, as dep.Plug finds it
		}
	}
	for i := range desired {
		s := &desired[i]
		plug := plugs[s.ID.Plug]
		if plug == nil {
			continue
		}
		m := manifests[plug.Name]
		if m == nil {
			m = plug.Plugin
		}
		cfg := healthConfig(spec.EffectiveHealth(m, plug))
		for k, v := range health.InstanceEnv(stateDir, s.ID, cfg) {
			if s.Env == nil {
				s.Env = map[string]string{}
			}
			s.Env[k] = v
		}
		cfg.Dir = s.Dir // exec checks run through RunOnce, with the instance's environment
		if len(cfg.Checks) > 0 {
			cfg.Secrets = append(secretValues(*s), brokerPassword)
		}
		out[s.ID] = cfg
	}
	return out
}

// healthConfig converts a plug's effective health.
func healthConfig(h spec.Health) health.Config {
	var c health.Config
	for _, sc := range h.Checks {
		c.Checks = append(c.Checks, health.Check{
			Name: sc.Name, Type: sc.Type, Interval: sc.Interval, Timeout: sc.Timeout, Failures: max(sc.Failures, 1),
			Command: sc.Command, URL: sc.URL, ExpectBody: sc.ExpectBody, Address: sc.Address,
			Within: sc.Within, Watchdog: sc.Watchdog,
		})
	}
	if h.CheckRestart != nil {
		c.RestartLimit, c.RestartGrace = h.CheckRestart.Limit, h.CheckRestart.Grace
	}
	return c
}

// secretValues are the values an instance's redacted config shows as
// (sensitive): its secret params, and its broker password (with the
// embedded broker, an account of its own: not the daemon's brokerPassword).
func secretValues(s instance.Spec) []string {
	type doc struct {
		Params map[string]json.RawMessage `json:"params"`
		Broker struct {
			Password string `json:"password"`
		} `json:"broker"`
	}
	var full, red doc
	if json.Unmarshal(s.Config, &full) != nil || json.Unmarshal(s.Redacted, &red) != nil {
		return nil
	}
	var out []string
	if full.Broker.Password != "" && red.Broker.Password == render.Sensitive {
		out = append(out, full.Broker.Password)
	}
	for name, v := range red.Params {
		var str string
		if json.Unmarshal(v, &str) != nil || str != render.Sensitive {
			continue
		}
		raw := full.Params[name]
		if json.Unmarshal(raw, &str) == nil {
			out = append(out, str)
		} else if len(raw) > 0 {
			out = append(out, string(raw))
		}
	}
	return out
}
