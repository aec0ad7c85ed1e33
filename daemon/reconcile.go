package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/redact"
	"github.com/plugs-dev/plugs/metrics"
	"github.com/plugs-dev/plugs/mqtt"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/spec"
)

// The reasons of reconciles that the daemon treats specially.
const (
	reasonApply       = "plugs apply"  // the user asked: an empty deployment is applied
	reasonFileChanged = "file changed" // a file event: a mass stop waits for a stable file
)

// outcome is what one reconcile did, recorded once by finish whatever path
// the reconcile took.
type outcome struct {
	reason   string
	start    time.Time
	revision string // what was read and runs if applied: a commit, or a content hash
	head     string // GitOps: the head that failed when the last good commit ran instead
	skipped  bool   // a GitOps poll found nothing new, a file event nothing unapplied: nothing to record
	canceled bool   // ended by the daemon's stop
	// unapplied: the apply ran but left a plug as it was (one the load
	// refused): plugs apply answers with the error, not the report.
	unapplied bool
	notDone   int   // changes of the applied plan that failed or were not begun
	loaded    *bool // whether the configuration loaded; nil: no load was tried
	report    *api.ApplyReport
	applied   bool                      // a plan was applied: revision and plugins are what runs
	plugins   []metrics.PluginInfo      // of the applied configuration
	manifests map[string]*spec.Manifest // of the applied configuration
	load      time.Duration
	plan      time.Duration
	apply     time.Duration
}

// reconcile loads the configuration and converges the running instances to
// it. Any error before applying leaves every instance as it was. force
// reconciles even when a GitOps poll found the commit already applied.
// Every step obeys ctx and the reconcile's deadline; the outcome is
// recorded once, by finish, on every channel.
func (d *daemon) reconcile(ctx context.Context, reason string, force bool) (rep *api.ApplyReport, err error) {
	o := &outcome{reason: reason, start: time.Now()}
	defer func() {
		if o.loaded != nil {
			d.flushSoon()   // daemon/flush.go
			d.releaseSoon() // daemon/memory.go
		}
	}()
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, d.opts.ReconcileTimeout)
	defer cancel()
	defer func() {
		// A stop of the daemon cancels the reconcile: said once, not as
		// the failure of every change it did not get to.
		o.canceled = err != nil && ctx.Err() != nil && d.runCtx.Err() != nil
		rep, err = o.report, d.finish(o, err)
		if o.canceled || o.unapplied && err != nil {
			rep = nil // the apply's client is told the error: canceled, or a plug refused
		}
	}()
	if d.alreadyApplied(reason) {
		// The event of the save plugs apply has just applied, or of the
		// lock it wrote: a reload would plan the same again.
		o.skipped = true
		d.log.Debug("file changed: its content runs already", "revision", o.revision)
		return nil, nil
	}

	var headErr error // GitOps: why the head does not run, when the last good commit does
	if d.mode == ModeGitOps {
		d.setStep(o, "poll")
		commit, perr := d.pollRepo(ctx)
		switch {
		case perr != nil && d.canFallBack(""):
			if !d.lastCommit.IsZero() {
				o.head = d.lastCommit.String()
			}
			headErr = fmt.Errorf("the config repository is unreachable: %w", perr)
			if cerr := d.checkoutLastGood(ctx); cerr != nil {
				return nil, &api.Error{Kind: api.KindEnv, Message: fmt.Sprintf("%v; the last good commit %s: %v", headErr, d.lastGood, cerr)}
			}
			commit = plumbing.NewHash(d.lastGood)
		case perr != nil:
			if !d.lastCommit.IsZero() { // none yet: no revision, not 000000000000
				o.revision = d.lastCommit.String()
			}
			return nil, &api.Error{Kind: api.KindEnv, Message: perr.Error()}
		case !force && commit == d.lastCommit && d.lastOK():
			o.skipped = true
			return nil, nil
		}
		o.revision = commit.String()
		d.lastCommit = commit
	}
	if d.mode == ModeBundle && (strings.Contains(reason, "SIGHUP") || reason == reasonApply) {
		// A reload re-reads the bundle: a new one may have been moved over
		// it (the offline rollout). It is verified before anything changes.
		d.setStep(o, "unbundle")
		if _, uerr := fetch.Unbundle(ctx, d.opts.Bundle, d.opts.StateDir); uerr != nil {
			kind := api.KindEnv
			if fetch.IsInputError(uerr) {
				kind = api.KindInput
			}
			return nil, &api.Error{Kind: kind, Message: fmt.Sprintf("unbundle %s: %v", d.opts.Bundle, uerr)}
		}
		d.bundleErr = nil
	}
	ld, lerr := d.loadStable(ctx, o)
	if lerr != nil && d.mode == ModeGitOps && headErr == nil && d.canFallBack(o.revision) {
		// A broken head at start: run the last good commit instead.
		headErr = fmt.Errorf("head %s failed: %w", shortCommit(o.revision), lerr)
		if cerr := d.checkoutLastGood(ctx); cerr != nil {
			return nil, lerr
		}
		o.head, o.revision = o.revision, d.lastGood
		ld, lerr = d.loadStable(ctx, o)
	}
	if lerr != nil {
		d.smu.Lock()
		running := d.revision
		d.smu.Unlock()
		if d.mode == ModeGitOps && headErr == nil && running != "" && running != o.revision {
			// The same sentence as at start, so that a retry of the same
			// broken head is the same failure (logged once).
			return nil, &api.Error{Kind: api.KindOf(lerr), Diagnostics: diagnosticsOf(lerr),
				Message: fmt.Sprintf("running last good commit %s; head %s failed: %s", shortCommit(running), shortCommit(o.revision), oneLineOf(lerr))}
		}
		return nil, lerr
	}
	if o.revision == "" {
		o.revision = ld.contentHash
	}
	services, taskSpecs := splitTasks(ld.desired)
	d.setStep(o, "plan")
	t := time.Now()
	observed := d.runner.Observe()
	// Plugs with an update {} block leave their replaces to a rollout, and
	// a held plug runs its held revision (daemon/rollout.go).
	effective, decisions := d.decideRollouts(services, observed)
	effective = holdUnrunnable(effective, observed, ld.unrunnable)
	plan := reconcile.NewPlan(effective, observed)
	held := d.holdFailedReplaces(plan, reason)
	o.plan = time.Since(t)
	// The trees of what starts are verified before anything changes; those
	// of the instances left running are verified at their next start.
	d.setStep(o, "load")
	t = time.Now()
	verr := d.loader.verify(toStart(plan, services, decisions, taskSpecs))
	o.load += time.Since(t)
	if verr != nil {
		failed := false
		o.loaded = &failed // what was read cannot run: as a load that failed
		return nil, verr
	}
	if ld.lockChanged && d.mode == ModeGitOps {
		d.log.Warn("the commit's plugs.lock.hcl is not up to date: resolved in memory; commit the lock (plugs lock) so that a restart without network can run it",
			"revision", shortCommit(o.revision))
	}
	if ld.lockChanged && d.mode == ModeFile {
		if werr := fetch.WriteLock(ld.lock.Filename, ld.lock); werr != nil {
			d.log.Warn("write lock", "err", werr)
		} else if o.revision == ld.contentHash {
			// The revision names the files as they are now, so that the
			// file event of this write finds them applied.
			o.revision = contentHash(d.file, filepath.Join(filepath.Dir(d.file), LockFileName))
		}
	}
	d.metrics.SetDesired(len(services))

	d.health.configure(ld.health, services) // before any start: notify sockets are bound
	if rerr := d.refuseEmpty(reason, len(ld.desired), observed); rerr != nil {
		return nil, rerr
	}
	d.tasks.update(taskSpecs)
	d.setStep(o, "apply")
	t = time.Now()
	// depends_on waits for the health checks' readiness (daemon/health.go).
	res := reconcile.Apply(ctx, d.runner, plan, reconcile.ApplyOptions{Logger: d.log, Parallelism: d.opts.ApplyParallelism, Ready: d.health})
	o.apply = time.Since(t)
	d.health.startedUnready(res, d.runner.Observe())
	o.report = applyReport(plan, res)
	d.noteFailedReplaces(plan, res, effective)
	d.startRollouts(services, decisions)
	o.report.Plan.Rollouts = d.planRollouts(decisions) // what goes on in the background
	d.endOverrides()
	for _, c := range plan.Changes {
		if c.Action == reconcile.Delete {
			d.broker.pub.Forget(c.ID.Plug, c.ID.Instance)
		}
	}
	o.applied, o.plugins, o.manifests = true, ld.plugins, ld.manifests // shown with the outcome, by finish
	d.pruneInstanceDirs(ctx, ld.desired)
	if headErr != nil {
		return nil, &api.Error{Kind: api.KindOf(headErr), Diagnostics: diagnosticsOf(headErr),
			Message: fmt.Sprintf("running last good commit %s; %v", shortCommit(d.lastGood), oneLineOf(headErr))}
	}
	if d.mode == ModeBundle && d.bundleErr != nil {
		kind := api.KindEnv
		if fetch.IsInputError(d.bundleErr) {
			kind = api.KindInput
		}
		return nil, &api.Error{Kind: kind, Message: fmt.Sprintf("running the last verified bundle; %v", d.bundleErr)}
	}
	if d.mode == ModeGitOps {
		d.saveLastGood(o.revision)
	}
	if aerr := res.Err(); aerr != nil {
		for _, oc := range res.Outcomes {
			if oc.Err != nil {
				o.notDone++
			}
		}
		return nil, &api.Error{Kind: api.KindEnv, Message: aerr.Error()}
	}
	if ld.unrunnableErr != nil {
		o.unapplied = true
		return nil, ld.unrunnableErr
	}
	return nil, heldError(held)
}

// alreadyApplied reports whether a file event's reconcile has nothing to
// do: plugs.hcl and its lock hold the bytes the last reconcile applied,
// and it succeeded (a failed start is retried by any reconcile).
func (d *daemon) alreadyApplied(reason string) bool {
	if d.mode != ModeFile || reason != reasonFileChanged {
		return false
	}
	h := contentHash(d.file, filepath.Join(filepath.Dir(d.file), LockFileName))
	d.smu.Lock()
	defer d.smu.Unlock()
	return d.applied && d.revision == h && d.last != nil && d.last.Error == ""
}

// loadStable loads the configuration. After a file event whose plan would
// stop all or most running instances (what a truncated or half-written
// plugs.hcl looks like: `cat > plugs.hcl`, an editor writing in place), it
// first waits until the files stop changing, then loads them again.
func (d *daemon) loadStable(ctx context.Context, o *outcome) (*loaded, error) {
	defer lessGC()() // the load's garbage: daemon/memory.go
	for waited := false; ; waited = true {
		d.setStep(o, "load")
		t := time.Now()
		ld, err := d.load(ctx, d.file, d.opts.Vars, true)
		o.load += time.Since(t)
		ok := err == nil
		o.loaded = &ok
		halfWritten := err != nil && api.KindOf(err) == api.KindInput // what a file caught mid-write fails with
		if err != nil {
			if o.revision == "" {
				o.revision = contentHash(d.file, filepath.Join(filepath.Dir(d.file), LockFileName))
			}
		}
		if waited || !strings.Contains(o.reason, reasonFileChanged) || (err != nil && !halfWritten) || !d.wouldStop(ld) {
			return ld, err
		}
		d.setStep(o, "wait for a stable file")
		if err := d.waitStable(ctx); err != nil {
			return nil, err
		}
	}
}

// holdUnrunnable keeps, for the plugs whose tree cannot run (loaded's
// unrunnable), the spec each of their instances runs with: a broken new
// version stops nothing; an instance that does not run is left to start
// and fail with its reason, as any start that cannot be made.
func holdUnrunnable(desired []instance.Spec, observed []instance.Status, unrunnable map[string]bool) []instance.Spec {
	if len(unrunnable) == 0 {
		return desired
	}
	running := make(map[instance.ID]instance.Spec, len(observed))
	for _, o := range observed {
		if unrunnable[o.ID.Plug] && o.State != instance.StateStopped && o.State != instance.StateFailed {
			running[o.ID] = o.Spec
		}
	}
	out := slices.Clone(desired)
	for i := range out {
		if s, ok := running[out[i].ID]; ok {
			out[i] = s
		}
	}
	return out
}

// toStart is every spec whose tree a process may start in before the next
// reconcile: the plan's creates and replaces; every desired instance of a
// plug with an update policy or a hold (its rollout starts them later); and
// every task (each run starts one).
func toStart(plan *reconcile.Plan, services []instance.Spec, decs map[string]reconcile.PlugDecision, tasks []instance.Spec) []instance.Spec {
	var out []instance.Spec
	for _, c := range plan.Changes {
		if (c.Action == reconcile.Create || c.Action == reconcile.Replace) && c.After != nil {
			out = append(out, *c.After)
		}
	}
	for _, s := range services {
		if decs[s.ID.Plug].Target != "" {
			out = append(out, s)
		}
	}
	return append(out, tasks...)
}

// wouldStop reports whether applying ld (nil: a configuration that does not
// load) would stop a running instance: what a file cut between two plug
// blocks looks like (a save in two writes, a slow copy), so such a file
// event waits for a stable file, however few it stops.
func (d *daemon) wouldStop(ld *loaded) bool {
	observed := d.runner.Observe()
	if len(observed) == 0 {
		return false
	}
	if ld == nil {
		return true // wrong input changes nothing, but it may be a half-written file: wait, then read it whole
	}
	for _, c := range reconcile.NewPlan(ld.desired, observed).Changes {
		if c.Action == reconcile.Delete {
			return true
		}
	}
	return false
}

// maxStableChecks bounds waitStable (with the reconcile's deadline).
const maxStableChecks = 30

// waitStable returns once plugs.hcl and its lock have not changed for
// StableWait, or once plugs apply asks for the file as it is.
func (d *daemon) waitStable(ctx context.Context) error {
	files := []string{d.file, filepath.Join(filepath.Dir(d.file), LockFileName)}
	prev := fileStamp(files...)
	select {
	case <-d.applyNow: // a plugs apply before this wait began: its own reconcile follows
	default:
	}
	for range maxStableChecks {
		timer := time.NewTimer(d.opts.StableWait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return &api.Error{Kind: api.KindEnv, Message: fmt.Sprintf("wait for %s to stop changing: %v", filepath.Base(d.file), ctx.Err())}
		case <-d.applyNow:
			timer.Stop()
			return nil // plugs apply: the user says the file is whole
		case <-timer.C:
		}
		cur := fileStamp(files...)
		if cur == prev {
			return nil
		}
		prev = cur
	}
	return &api.Error{Kind: api.KindEnv, Message: fmt.Sprintf("%s kept changing for %s; not applied", filepath.Base(d.file), maxStableChecks*d.opts.StableWait)}
}

// fileStamp identifies the files' content and modification times.
func fileStamp(files ...string) string {
	var b strings.Builder
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%d %d;", fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return b.String() + contentHash(files...)
}

// refuseEmpty refuses a deployment that declares no instance while some
// run, unless the user asked for it (plugs apply) or allows it
// (--allow-empty), as Argo CD refuses an empty sync: an empty or
// comment-only plugs.hcl is far more often a truncated save than a wish.
func (d *daemon) refuseEmpty(reason string, desired int, observed []instance.Status) error {
	running := len(observed)
	if desired > 0 || running == 0 || d.opts.AllowEmpty || reason == reasonApply {
		return nil
	}
	return &api.Error{Kind: api.KindInput, Message: fmt.Sprintf(
		"%s declares no instance while %d run: not applied, as it would stop them all; run plugs apply to apply it, or start the daemon with --allow-empty",
		filepath.Base(d.file), running)}
}

// maxBlockedLoads bounds the loads left behind at their deadline that may
// still be blocked at once.
const maxBlockedLoads = 3

// load runs the loader bounded by ctx. A load that does not end in time
// (a source or a file() that blocks on open: a FIFO, a hung network mount)
// is left behind, so that the next reconcile (of a fixed plugs.hcl) can
// run; while maxBlockedLoads of them are still blocked, a reconcile says so
// at once instead of piling up more. Called with mu held.
func (d *daemon) load(ctx context.Context, file string, vars map[string]string, deferVerify bool) (*loaded, error) {
	d.smu.Lock()
	blocked, since := d.blockedLoads, d.blockedSince
	d.smu.Unlock()
	if blocked >= maxBlockedLoads {
		return nil, &api.Error{Kind: api.KindEnv, Message: fmt.Sprintf(
			"%d earlier loads of %s are still blocked (the first since %s): does a source or a file() block on open (a FIFO, a hung mount)?",
			blocked, filepath.Base(file), since.Format(time.RFC3339))}
	}
	type result struct {
		ld  *loaded
		err error
	}
	done := make(chan result, 1)
	abandoned := make(chan struct{})
	l := d.loader
	go func() {
		ld, err := l.loadFor(ctx, file, vars, deferVerify)
		done <- result{ld, err}
		select {
		case <-abandoned:
			d.smu.Lock()
			d.blockedLoads--
			d.smu.Unlock()
		default:
		}
	}()
	select {
	case r := <-done:
		return r.ld, r.err
	case <-ctx.Done():
		d.smu.Lock()
		select {
		case r := <-done: // it ended just now
			d.smu.Unlock()
			return r.ld, r.err
		default:
		}
		if d.blockedLoads == 0 {
			d.blockedSince = time.Now()
		}
		d.blockedLoads++
		close(abandoned)
		d.smu.Unlock()
		// The blocked load may hold its parser's lock: later loads get a
		// parser and a store of their own.
		d.loader = d.newLoader()
		return nil, &api.Error{Kind: api.KindEnv, Message: fmt.Sprintf(
			"load %s: %v (does a source or a file() block on open: a FIFO, a hung mount?)", filepath.Base(file), ctx.Err())}
	}
}

// setStep shows the reconcile in progress in status.
func (d *daemon) setStep(o *outcome, step string) {
	d.smu.Lock()
	d.progress = &api.Progress{Reason: o.reason, Since: o.start, Step: step}
	d.smu.Unlock()
}

// finish records the outcome of a reconcile on every channel DESIGN names
// — the log (one line, errors with the key "err"), plugs_reconcile_total and
// the config-reload metrics, plugs status and the MQTT reconcile topic —
// and returns err as a redacted *api.Error. The same failure again (the
// next interval's retry of a broken commit) is logged at debug level only.
func (d *daemon) finish(o *outcome, err error) error {
	d.smu.Lock()
	d.progress = nil
	d.smu.Unlock()
	if o.skipped {
		return nil
	}
	now := time.Now()
	dur := now.Sub(o.start)
	if o.loaded != nil {
		d.metrics.ConfigReloaded(*o.loaded, now)
	}
	st := &api.ReconcileStatus{At: now, Duration: dur, Revision: cmp.Or(o.head, o.revision)}
	if o.canceled {
		msg := "canceled: the daemon is stopping"
		if o.applied {
			msg += fmt.Sprintf(" (%d changes not done)", o.notDone)
		}
		err = &api.Error{Kind: api.KindEnv, Message: msg}
	}
	var ae *api.Error
	if err != nil {
		ae = d.redactError(err)
		st.Error, st.Kind, st.Diagnostics = ae.Message, ae.Kind, ae.Diagnostics
	}
	d.metrics.ReconcileDone(dur, err)
	msg := mqttReconcile(st, d.rolloutOutcomes())
	d.broker.pub.PublishReconcile(msg)

	d.smu.Lock()
	d.last = st
	if o.applied {
		d.revision, d.plugins, d.manifests, d.applied = o.revision, o.plugins, o.manifests, true
	}
	repeated := ae != nil && ae.Message == d.lastLogged
	if ae != nil {
		d.lastLogged = ae.Message
	} else {
		d.lastLogged = ""
	}
	d.smu.Unlock()
	d.notifyUI()

	switch {
	case o.canceled:
		d.log.Info("reconcile canceled: the daemon is stopping", "reason", o.reason, "revision", o.revision,
			"not_done", o.notDone, "took", dur.Round(time.Millisecond))
		return ae
	case ae != nil:
		level := d.log.Error
		if repeated {
			level = d.log.Debug
		}
		level("reconcile failed", "reason", o.reason, "revision", o.revision, "kind", string(ae.Kind), "took", dur.Round(time.Millisecond), "err", ae.Message)
		return ae
	default:
		r := o.report
		if r == nil {
			r = &api.ApplyReport{}
		}
		d.log.Info("reconciled", "reason", o.reason, "revision", o.revision,
			"started", r.Started, "replaced", r.Replaced, "stopped", r.Stopped, "updated", r.Updated, "failed", r.Failed,
			"load", o.load.Round(time.Microsecond), "plan", o.plan.Round(time.Microsecond), "apply", o.apply.Round(time.Microsecond),
			"took", dur.Round(time.Millisecond))
		return nil
	}
}

// redactError is err as an *api.Error whose message and diagnostics hold
// no broker password, and whose message is one line.
func (d *daemon) redactError(err error) *api.Error {
	var in *api.Error
	out := &api.Error{Kind: api.KindOf(err), Message: err.Error()}
	if errors.As(err, &in) {
		out.Message, out.Diagnostics = in.Message, append([]api.Diagnostic(nil), in.Diagnostics...)
	}
	out.Message = strings.Join(strings.Fields(d.redact(out.Message)), " ")
	for i := range out.Diagnostics {
		g := &out.Diagnostics[i]
		g.Summary, g.Detail = d.redact(g.Summary), d.redact(g.Detail)
		if g.Snippet != nil {
			s := *g.Snippet
			s.Code = d.redact(s.Code)
			g.Snippet = &s
		}
	}
	return out
}

// redact removes the broker password from a message bound for status, logs
// and MQTT. Secret params never reach one: diagnostics leave their values
// out, and sources are shown without credentials.
func (d *daemon) redact(s string) string {
	if c := d.broker.config; c != nil {
		return redact.Values(s, c.Password)
	}
	return s
}

func (d *daemon) lastOK() bool {
	d.smu.Lock()
	defer d.smu.Unlock()
	return d.last != nil && d.last.Error == ""
}

// mqttReconcile is the MQTT reconcile message of a reconcile's status.
// rollouts are the plugs whose rollout is under way, failed or held.
func mqttReconcile(st *api.ReconcileStatus, rollouts []mqtt.RolloutOutcome) mqtt.ReconcileMessage {
	m := mqtt.ReconcileMessage{Result: mqtt.ReconcileSuccess, Revision: st.Revision, At: st.At, Rollouts: rollouts}
	if st.Error != "" {
		m.Result, m.Error = mqtt.ReconcileError, st.Error
	}
	return m
}

// diagnosticsOf is the diagnostics err carries, if any.
func diagnosticsOf(err error) []api.Diagnostic {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Diagnostics
	}
	return nil
}

// oneLineOf is err's message on one line.
func oneLineOf(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}
