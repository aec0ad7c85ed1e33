package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/plugs-dev/plugs/internal/names"
	"github.com/plugs-dev/plugs/reconcile"
)

var _ backend = (*daemon)(nil)

// status is GET /v1/status.
func (d *daemon) status() api.Status {
	st := api.Status{Daemon: d.daemonStatus(), Instances: instanceStatuses(d.observeAll())}
	for i := range st.Instances {
		st.Instances[i].Sandbox = d.runner.SandboxSummary(instance.ID{Plug: st.Instances[i].Plug, Instance: st.Instances[i].Instance})
	}
	d.health.decorate(st.Instances)                            // daemon/health.go
	st.Instances = append(st.Instances, d.tasks.statuses()...) // daemon/tasks.go
	st.Plugins = d.pluginInfos()
	st.Rollouts = d.rolloutStatuses(d.runner.Observe()) // daemon/rollout.go
	return st
}

// daemonStatus is the daemon's own lines of status, without the instances:
// what the dashboard's hub reads on every state change (at N = 1,000 the
// whole status allocates ~4 MB).
func (d *daemon) daemonStatus() api.DaemonStatus {
	d.smu.Lock()
	ds := api.DaemonStatus{
		PID:            os.Getpid(),
		Started:        d.started,
		ConfigFile:     d.file,
		Mode:           d.mode,
		Repo:           redactURL(d.opts.Repo),
		ConfigRevision: d.revision,
		BrokerURL:      redactURL(d.broker.info.URL),
		MetricsAddr:    d.metricsAddr,
		Sandbox:        d.sandboxLines,
		UIAddr:         d.uiAddr,
	}
	if d.last != nil {
		l := *d.last
		ds.LastReconcile = &l
	}
	if d.progress != nil {
		p := *d.progress
		ds.Reconciling = &p
	}
	ds.LastGood = d.lastGoodShown
	d.smu.Unlock()
	ds.BrokerConnected = d.broker.pub.Connected()
	ds.Run = d.broker.pub.RunID()
	if msg, _ := d.broker.pub.LastError(); msg != "" && !ds.BrokerConnected {
		ds.BrokerError = d.redact(msg)
	}
	ds.TaskCallsMQTT = d.tasks.execState() // daemon/tasks.go
	ds.APIAddr = d.tasks.apiAddr
	return ds
}

func instanceStatuses(obs []instance.Status) []api.InstanceStatus {
	out := make([]api.InstanceStatus, 0, len(obs))
	for _, o := range obs {
		s := api.InstanceStatus{
			Plug: o.ID.Plug, Instance: o.ID.Instance, State: string(o.State), PID: o.PID,
			StartedAt: o.StartedAt, Restarts: o.Restarts, Version: o.Spec.Version,
			Revision: o.Spec.Revision, Reason: o.Reason,
		}
		if o.LastExit != nil {
			s.LastExit = &api.Exit{Code: o.LastExit.Code, Signal: o.LastExit.Signal, At: o.LastExit.At, OOMKilled: o.LastExit.OOMKilled}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b api.InstanceStatus) int {
		if c := strings.Compare(a.Plug, b.Plug); c != 0 {
			return c
		}
		return strings.Compare(a.Instance, b.Instance)
	})
	return out
}

// plan is POST /v1/plan: the plan of the daemon's configuration (or of
// another file) against what runs, without applying it.
func (d *daemon) plan(ctx context.Context, req api.PlanRequest) (*api.PlanReport, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	file, vars := d.file, d.opts.Vars
	if req.File != "" {
		if d.mode != ModeFile {
			return nil, &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("the daemon runs a %s; plan without -f", d.mode)}
		}
		abs, err := filepath.Abs(req.File)
		if err != nil {
			return nil, err
		}
		file, vars = abs, req.Vars
	}
	if d.mode == ModeGitOps {
		if _, err := d.pollRepo(ctx); err != nil {
			return nil, &api.Error{Kind: api.KindEnv, Message: err.Error()}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.ReconcileTimeout)
	defer cancel()
	ld, err := d.load(ctx, file, vars, false)
	if err != nil {
		return nil, d.redactError(err)
	}
	services, _ := splitTasks(ld.desired) // tasks are not planned: they run when called
	observed := d.runner.Observe()
	// A held plug plans its held revision; a rollout's replaces show as
	// replaces, and how they roll out beside them (daemon/rollout.go).
	_, decisions := d.decideRollouts(services, observed)
	var desired []instance.Spec
	for _, s := range services {
		if dec := decisions[s.ID.Plug]; dec.Held == "" {
			desired = append(desired, s)
		}
	}
	for _, dec := range decisions {
		if dec.Held != "" {
			desired = append(desired, dec.Desired...)
		}
	}
	p := planReport(reconcile.NewPlan(desired, observed))
	p.Rollouts = d.planRollouts(decisions)
	p.Revision = ld.contentHash
	return p, nil
}

// apply is POST /v1/apply: poll (GitOps) and reconcile now.
// Failures of single instances are in the report, not an error.
func (d *daemon) apply(ctx context.Context) (*api.ApplyReport, error) {
	// Not canceled by a client that gives up waiting: the reconcile ends
	// (bounded by its own deadline) and is recorded either way. A stop of
	// the daemon cancels it, as it cancels the loop's.
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	defer context.AfterFunc(d.runCtx, cancel)()
	select {
	case d.applyNow <- struct{}{}: // a reconcile waiting for a stable file applies it now
	default:
	}
	rep, err := d.reconcile(ctx, reasonApply, true)
	if rep != nil {
		return rep, nil
	}
	return nil, err
}

// restart is POST /v1/restart.
func (d *daemon) restart(ctx context.Context, req api.RestartRequest) (*api.RestartReport, error) {
	var ids []instance.ID
	for _, o := range d.runner.Observe() {
		if o.ID.Plug == req.Plug && (req.Instance == "" || o.ID.Instance == req.Instance) {
			ids = append(ids, o.ID)
		}
	}
	if len(ids) == 0 {
		name := req.Plug
		if req.Instance != "" {
			name += "/" + req.Instance
		}
		return nil, &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("no running instance %s", name)}
	}
	rep := &api.RestartReport{}
	for _, id := range ids {
		if err := d.runner.Restart(ctx, id); err != nil {
			return rep, fmt.Errorf("restart %s: %w", id, err)
		}
		rep.Restarted = append(rep.Restarted, id.String())
	}
	return rep, nil
}

// logPath is GET /v1/logs: the log of a plug's instance; with no instance,
// of its only (or first) one.
func (d *daemon) logPath(plug, instance string) (string, error) {
	return ResolveLogPath(d.opts.StateDir, plug, instance)
}

// QuietLog reports whether path, the log of an instance that exists, is
// not made yet (an instance that has printed nothing gets its empty log
// once the starts pause: the runner's housekeeper): without follow, there
// is nothing to print. With follow, TailLog waits for it.
func QuietLog(path string, follow bool) bool {
	_, err := os.Stat(path)
	return !follow && os.IsNotExist(err)
}

// ResolveLogPath finds the log of plug/instance in stateDir; an empty
// instance means the plug's only instance, or "default".
func ResolveLogPath(stateDir, plug, instance string) (string, error) {
	if !names.PathElement(plug) || instance != "" && !names.PathElement(instance) {
		return "", &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("invalid instance %q", plug+"/"+instance)}
	}
	if instance == "" {
		// Instances, by their state file: a quiet one's log may not be
		// made yet.
		dirs, _ := filepath.Glob(filepath.Join(layout.Instances(stateDir), plug, "*", "instance.json"))
		switch len(dirs) {
		case 0:
			return "", &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("no log for plug %s in %s", plug, stateDir)}
		case 1:
			return filepath.Join(filepath.Dir(dirs[0]), layout.OutputLogName), nil
		}
		var names []string
		for _, p := range dirs {
			names = append(names, filepath.Base(filepath.Dir(p)))
		}
		return "", &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("plug %s has several instances (%s): name one as %s/INSTANCE", plug, strings.Join(names, ", "), plug)}
	}
	return layout.OutputLog(stateDir, plug, instance), nil
}

// planReport keeps the changes of p that do something.
func planReport(p *reconcile.Plan) *api.PlanReport {
	r := &api.PlanReport{Changes: []api.Change{}}
	for _, c := range p.Changes {
		if c.Action == reconcile.NoOp {
			continue
		}
		ch := api.Change{Plug: c.ID.Plug, Instance: c.ID.Instance, Action: c.Action.String()}
		var reasons []string
		for _, why := range c.Reasons {
			reasons = append(reasons, why.String())
		}
		ch.Reason = strings.Join(reasons, ", ")
		for _, l := range c.ConfigDiff {
			ch.Diff = append(ch.Diff, l.String())
		}
		switch c.Action {
		case reconcile.Create:
			r.Start++
		case reconcile.Replace:
			r.Replace++
		case reconcile.Delete:
			r.Stop++
		case reconcile.Update:
			r.Update++
		}
		r.Changes = append(r.Changes, ch)
	}
	return r
}

// applyReport joins a plan and what applying it did.
func applyReport(p *reconcile.Plan, res *reconcile.ApplyResult) *api.ApplyReport {
	rep := &api.ApplyReport{Plan: *planReport(p)}
	failed, warned := map[string]string{}, map[string]string{}
	for _, o := range res.Outcomes {
		if o.NotReady != "" {
			warned[o.ID.String()] = o.NotReady
		}
		if o.Err != nil {
			failed[o.ID.String()] = o.Err.Error()
			rep.Failed++
			continue
		}
		if o.Skipped {
			continue
		}
		switch o.Action {
		case reconcile.Create:
			rep.Started++
		case reconcile.Replace:
			rep.Replaced++
		case reconcile.Delete:
			rep.Stopped++
		case reconcile.Update:
			rep.Updated++
		}
	}
	for i := range rep.Plan.Changes {
		c := &rep.Plan.Changes[i]
		c.Error, c.Warning = failed[c.Plug+"/"+c.Instance], warned[c.Plug+"/"+c.Instance]
	}
	return rep
}

// pluginInfos is what each loaded plug's manifest says of itself, sorted by
// plug.
func (d *daemon) pluginInfos() []api.PluginInfo {
	d.smu.Lock()
	manifests := d.manifests
	d.smu.Unlock()
	out := make([]api.PluginInfo, 0, len(manifests))
	for plug, m := range manifests {
		if m == nil {
			continue
		}
		out = append(out, api.PluginInfo{
			Plug: plug, Name: m.Name, Version: m.Version, UUID: m.UUID, Description: m.Description,
			Instructions: m.Instructions, Author: m.Author, License: m.License, Exports: m.Exports,
		})
	}
	slices.SortFunc(out, func(a, b api.PluginInfo) int { return strings.Compare(a.Plug, b.Plug) })
	return out
}
