package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/plugs-dev/plugs/health"
	"github.com/plugs-dev/plugs/runner"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/spec"
	"github.com/plugs-dev/plugs/ui"
)

// serveUI serves the dashboard on opts.UIAddr (nothing when it is empty),
// with the TLS and basic auth of the metrics' web config file, until the
// returned func is called. A non-loopback address without authentication
// is refused: the dashboard restarts and kills processes.
func (d *daemon) serveUI(ctx context.Context) (func(), error) {
	if d.opts.UIAddr == "" {
		return func() {}, nil
	}
	ln, err := ui.Listen(d.opts.UIAddr, d.opts.WebConfigFile)
	if err != nil {
		kind := api.KindEnv
		if errors.Is(err, ui.ErrNoAuth) {
			kind = api.KindInput
		}
		return nil, &api.Error{Kind: kind, Message: fmt.Sprintf("%v (choose another with --ui-addr; an empty value turns the dashboard off)", err)}
	}
	srv, err := ui.New(ui.Options{Backend: uiBackend{d}, Logger: d.log.With("component", "ui")})
	if err != nil {
		ln.Close()
		return nil, err
	}
	// The API already serves status, which reads uiAddr.
	d.smu.Lock()
	d.uiAddr = ln.Addr().String()
	d.smu.Unlock()
	d.uiSrv.Store(srv)
	uctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(uctx, ln, d.opts.WebConfigFile); err != nil && uctx.Err() == nil {
			d.log.Error("ui server", "err", err)
		}
	}()
	return func() {
		cancel()
		<-done
		d.uiSrv.Store(nil)
		srv.Close()
	}, nil
}

// notifyUI tells the dashboard that an instance or the daemon changed.
func (d *daemon) notifyUI() {
	if s := d.uiSrv.Load(); s != nil {
		s.Notify()
	}
}

// notifyUIInstance tells the dashboard that instance st changed.
func (d *daemon) notifyUIInstance(st instance.Status) {
	if s := d.uiSrv.Load(); s != nil {
		s.NotifyInstance(st)
	}
}

// uiBackend is the daemon as the dashboard sees it: the methods behind the
// local API, and the imperative actions.
type uiBackend struct{ d *daemon }

var (
	_ ui.Backend     = uiBackend{}
	_ ui.Controller  = uiBackend{}
	_ ui.SetupRunner = uiBackend{}
)

func (b uiBackend) Status() ui.Status {
	s := b.d.daemonStatus() // not the instances': the dashboard reads them through Observe
	ds := ui.DaemonStatus{
		PID: s.PID, Started: s.Started, ConfigFile: s.ConfigFile, Mode: s.Mode, Repo: s.Repo,
		ConfigRevision: s.ConfigRevision, BrokerURL: s.BrokerURL, BrokerConnected: s.BrokerConnected,
		BrokerError: s.BrokerError, MetricsAddr: s.MetricsAddr,
	}
	if l := s.LastReconcile; l != nil {
		msg := l.Error
		if len(l.Diagnostics) > 0 { // the dashboard shows them as text, source lines included
			var b strings.Builder
			_ = api.WriteDiagnostics(&b, l.Diagnostics, 78)
			msg = strings.TrimRight(b.String(), "\n")
		}
		ds.LastReconcile = &ui.ReconcileStatus{At: l.At, Duration: l.Duration, Revision: l.Revision, Error: msg}
	}
	return ui.Status{Daemon: ds}
}

func (b uiBackend) Observe() []instance.Status { return b.d.observeAll() }

func (b uiBackend) Plan(ctx context.Context) (*ui.PlanReport, error) {
	p, err := b.d.plan(ctx, api.PlanRequest{})
	if err != nil {
		return nil, err
	}
	r := uiPlan(*p)
	return &r, nil
}

func uiPlan(p api.PlanReport) ui.PlanReport {
	r := ui.PlanReport{Revision: p.Revision, Start: p.Start, Replace: p.Replace, Stop: p.Stop, Update: p.Update}
	for _, c := range p.Changes {
		r.Changes = append(r.Changes, ui.Change{Plug: c.Plug, Instance: c.Instance, Action: c.Action, Reason: c.Reason, Diff: c.Diff, Error: c.Error})
	}
	return r
}

func (b uiBackend) Apply(ctx context.Context) (*ui.ApplyReport, error) {
	rep, err := b.d.apply(ctx)
	if rep == nil {
		return nil, err
	}
	return &ui.ApplyReport{Plan: uiPlan(rep.Plan), Started: rep.Started, Replaced: rep.Replaced,
		Stopped: rep.Stopped, Updated: rep.Updated, Failed: rep.Failed}, err
}

func (b uiBackend) Restart(ctx context.Context, id instance.ID) error {
	_, err := b.d.restart(ctx, api.RestartRequest{Plug: id.Plug, Instance: id.Instance})
	return err
}

func (b uiBackend) Logs(ctx context.Context, w io.Writer, id instance.ID, n int, follow bool) error {
	path, err := b.d.logPath(id.Plug, id.Instance)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil && !follow { // no such instance
		return err
	}
	if QuietLog(path, follow) {
		return nil
	}
	return runner.TailLog(ctx, w, path, n, follow)
}

func (b uiBackend) Plugins() []ui.Plugin {
	d := b.d
	d.smu.Lock()
	infos, manifests := d.plugins, d.manifests
	d.smu.Unlock()
	out := make([]ui.Plugin, 0, len(infos))
	for _, info := range infos {
		p := ui.Plugin{Plug: info.Plug, Version: info.Version, Revision: info.Revision, Source: info.Source}
		if m := manifests[info.Plug]; m != nil {
			p.Name, p.Description, p.Instructions, p.Kind, p.Exports = m.Name, m.Description, m.Instructions, m.Kind, m.Exports
			p.Command, p.HasSetup, p.SetupRequired = m.Command, len(m.Setup) > 0, m.SetupRequired
			for _, ps := range m.Params {
				p.Params = append(p.Params, uiParam(ps))
			}
		}
		out = append(out, p)
	}
	return out
}

// uiParam shows a param's declaration; a secret's default is never copied.
func uiParam(ps *spec.ParamSpec) ui.Param {
	p := ui.Param{Name: ps.Name, Required: ps.Required, Secret: ps.Secret, Description: ps.Description, Type: "any"}
	if ps.Type != cty.NilType && ps.Type != cty.DynamicPseudoType {
		p.Type = ps.Type.FriendlyName()
	}
	if !ps.Secret && ps.Default != cty.NilVal && ps.Default.IsWhollyKnown() && !ps.Default.IsNull() {
		if b, err := ctyjson.Marshal(ps.Default, ps.Default.Type()); err == nil {
			p.Default = string(b)
		}
	}
	return p
}

func (b uiBackend) Stop(ctx context.Context, id instance.ID) error  { return b.d.stopByHand(ctx, id) }
func (b uiBackend) Start(ctx context.Context, id instance.ID) error { return b.d.startByHand(ctx, id) }
func (b uiBackend) Kill(ctx context.Context, id instance.ID) error  { return b.d.kill(id) }
func (b uiBackend) Overrides() map[instance.ID]string               { return b.d.overrides() }

func (b uiBackend) Setup(ctx context.Context, id instance.ID, out io.Writer) error {
	return b.d.setupInstance(ctx, id, out)
}

var _ ui.HealthReader = uiBackend{}

// Health gives the dashboard the health of every instance that has checks
// (a health column and a checks panel). Check outputs stay out: a probe's
// output is the plugin's and may hold anything.
func (b uiBackend) Health() map[ui.InstanceID]ui.Health {
	if b.d.health == nil || b.d.health.mgr == nil {
		return nil
	}
	out := map[ui.InstanceID]ui.Health{}
	for id, st := range b.d.health.mgr.Statuses() {
		if st.Health == health.None && len(st.Checks) == 0 {
			continue
		}
		h := ui.Health{State: st.Health}
		for _, c := range st.Checks {
			h.Checks = append(h.Checks, ui.Check{Name: c.Name, Type: c.Type, Passing: c.Passing, ConsecutiveFailures: c.ConsecutiveFailures, LastResult: c.LastResult})
		}
		out[id] = h
	}
	return out
}

var _ ui.RolloutReader = uiBackend{}

// Rollouts gives the dashboard the rollouts plugs status shows, with the
// healthy and unproven counts of the one under way (reasons are redacted
// where they are recorded).
func (b uiBackend) Rollouts() []ui.Rollout {
	d := b.d
	if d.ro == nil {
		return nil
	}
	d.ro.mu.Lock()
	none := len(d.ro.recs) == 0 && len(d.ro.live) == 0
	d.ro.mu.Unlock()
	if none { // no plug with an update {} block has been judged: no Observe
		return nil
	}
	sts := d.rolloutStatuses(d.runner.Observe())
	out := make([]ui.Rollout, 0, len(sts))
	for _, s := range sts {
		r := ui.Rollout{Plug: s.Plug, State: s.State, Desired: s.Revision, LastHealthy: s.LastHealthy, Override: s.Override,
			Batch: s.Batch, Batches: s.Batches, OnTarget: s.OnTarget, Instances: s.Instances, Since: s.Since, Reason: s.Reason}
		d.ro.mu.Lock()
		if specs := d.ro.desired[s.Plug]; len(specs) > 0 && specs[0].Update != nil {
			r.AutoRevert = specs[0].Update.AutoRevert
		}
		d.ro.mu.Unlock()
		if s.State == api.RolloutProgressing {
			r.Healthy, r.Unproven, _ = d.rolloutCounts(s.Plug)
		}
		out = append(out, r)
	}
	return out
}

// RolloutHistory is plugs history PLUG.
func (b uiBackend) RolloutHistory(plug string) ([]ui.RolloutRevision, error) {
	if b.d.ro == nil {
		return nil, errors.New("no rollouts")
	}
	h, err := b.d.history(plug)
	if err != nil {
		return nil, err
	}
	out := make([]ui.RolloutRevision, len(h.Entries))
	for i, e := range h.Entries {
		out[i] = ui.RolloutRevision{ID: e.ID, Revision: e.Revision, Version: e.Version, Verdict: e.Verdict, Reason: e.Reason,
			Deployed: e.Deployed, Judged: e.Judged, Runs: e.Runs, LastHealthy: e.LastHealthy, Restorable: e.Restorable}
	}
	return out, nil
}
