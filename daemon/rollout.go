package daemon

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/atomicfile"
	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/plugs-dev/plugs/metrics"
	"github.com/plugs-dev/plugs/mqtt"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/render"
)

// The daemon's side of health-gated rollouts (issue 13; the policy is
// reconcile/rollout.go). A reconcile decides every plug (DecidePlug):
// creates, deletes and in-place updates apply at once, as do plugs
// without an update {} block; a plug's replaces are left to a rollout,
// one goroutine per plug that replaces a batch of max_parallel instances
// at a time (holding the reconcile lock only while it does), and waits —
// on the instance's status and health changes, and on a timer, never a
// polling tick — until the batch is judged (BatchVerdict). A rollout is
// superseded (canceled, as Nomad cancels a deployment) when the plug's
// desired state changes again.
//
// What must survive a restart is kept in <state>/rollouts/<plug>.json
// (mode 0600; the specs are kept with their redacted configs only, and
// made whole with the secrets of the current configs when they run again,
// so that no file but an instance's config.json holds a secret): the
// plug's revisions with their verdicts, the specs of the last healthy ones (their plugin trees stay in the store, which never
// removes one), the hold (a revert, a failed rollout, plugs rollback) and
// the target of the rollout under way. A daemon killed in the middle of a
// rollout starts the plug on its last healthy revision and rolls out
// again (reconcile.DecidePlug's Resumed), and says so in status.

// Bounds of a plug's rollout record.
const (
	maxHistory      = 20 // revisions kept
	maxRestorable   = 5  // healthy revisions whose specs are kept for plugs rollback
	rolloutStopWait = time.Minute
)

// rollouts is the daemon's rollout state.
type rollouts struct {
	dir string // <state>/rollouts

	mu      sync.Mutex
	recs    map[string]*plugRollout    // every plug with a record
	live    map[string]*liveRollout    // the rollouts under way, by plug
	desired map[string][]instance.Spec // each plug's desired specs at the last reconcile
	held    map[string]string          // each plug's hold reason while it applies
	// reverting names the plugs whose revert is being applied: until it
	// has replaced the failed revision's instances, status says a
	// rollout is under way, not that the plug runs its last healthy one.
	reverting map[string]bool
	outcome   map[string]mqtt.RolloutOutcome // failed, reverted or pinned plugs, for MQTT
	wg        sync.WaitGroup
}

// plugRollout is one plug's record, as <state>/rollouts/<plug>.json holds it.
type plugRollout struct {
	Plug        string        `json:"plug"`
	LastHealthy string        `json:"last_healthy,omitempty"`
	Hold        *holdRecord   `json:"hold,omitempty"`
	Active      *activeRecord `json:"active,omitempty"`
	History     []*revision   `json:"history"` // oldest first
}

// holdRecord is a reconcile.Hold; Runs names the revision whose specs run
// ("" for a failed rollout without auto_revert: what runs stays).
type holdRecord struct {
	Desired string    `json:"desired"`
	Kind    string    `json:"kind"` // api.RolloutReverted, RolloutFailed or RolloutPinned
	Runs    string    `json:"runs,omitempty"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// outcome is what MQTT says of plug under hold h.
func (h *holdRecord) outcome(plug string) mqtt.RolloutOutcome {
	return mqtt.RolloutOutcome{Plug: plug, Result: h.Kind, Revision: h.Desired, RevertedTo: h.Runs, Reason: h.Reason}
}

// holdLocked puts rec's plug under hold h: its record (saved), its MQTT
// outcome and the reason status shows all follow from h. ro.mu is held.
func (d *daemon) holdLocked(rec *plugRollout, h *holdRecord) {
	rec.Hold = h
	d.ro.outcome[rec.Plug] = h.outcome(rec.Plug)
	d.ro.held[rec.Plug] = h.Reason
	d.saveRecord(rec)
}

// activeRecord is the rollout under way.
type activeRecord struct {
	Target  string    `json:"target"`
	From    string    `json:"from,omitempty"`
	Started time.Time `json:"started"`
}

// revision is one revision of a plug in its history.
type revision struct {
	ID       string          `json:"id"`
	Revision string          `json:"revision,omitempty"`
	Version  string          `json:"version,omitempty"`
	Verdict  string          `json:"verdict"`
	Reason   string          `json:"reason,omitempty"`
	Deployed time.Time       `json:"deployed"`
	Judged   time.Time       `json:"judged,omitzero"`
	Specs    []instance.Spec `json:"specs,omitempty"`
}

// liveRollout is one rollout under way.
type liveRollout struct {
	plug, target string
	policy       instance.Update
	specs        []instance.Spec // the target's
	stages       []rolloutStage
	resumed      string // why it starts from the last healthy revision after a restart; "" when it does not
	ctx          context.Context
	cancel       context.CancelFunc
	poke         chan struct{}

	// guarded by rollouts.mu
	stage      int
	stageStart time.Time
	started    time.Time
}

// rolloutStage is one batch: the changes that make it (none for the
// instances a reconcile created at once) and the instances judged.
type rolloutStage struct {
	apply []reconcile.Change
	ids   []instance.ID
}

// openRollouts reads every plug's record. A record that does not parse
// (a disk that filled up under a write, a hand edit) is moved aside to
// <plug>.json.damaged and said so: that plug starts afresh, with no last
// healthy revision, as a first deploy; the others keep theirs.
func openRollouts(stateDir string, log *slog.Logger) (*rollouts, error) {
	ro := &rollouts{
		dir: layout.Rollouts(stateDir), recs: map[string]*plugRollout{}, live: map[string]*liveRollout{},
		desired: map[string][]instance.Spec{}, held: map[string]string{}, outcome: map[string]mqtt.RolloutOutcome{},
		reverting: map[string]bool{},
	}
	files, _ := filepath.Glob(filepath.Join(ro.dir, "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read rollout record: %w", err)
		}
		var rec plugRollout
		if err := json.Unmarshal(b, &rec); err != nil || rec.Plug+".json" != filepath.Base(f) {
			why := "it names another plug"
			if err != nil {
				why = err.Error()
			}
			if rerr := os.Rename(f, f+".damaged"); rerr != nil {
				return nil, fmt.Errorf("rollout record %s is damaged (%s) and cannot be moved aside: %w", f, why, rerr)
			}
			log.Error("rollout record damaged: moved aside, the plug starts afresh", "file", f, "moved_to", f+".damaged", "err", why)
			continue
		}
		ro.recs[rec.Plug] = &rec
		if h := rec.Hold; h != nil {
			ro.outcome[rec.Plug] = h.outcome(rec.Plug)
		}
	}
	return ro, nil
}

// find is the revision id of rec, or nil.
func (rec *plugRollout) find(id string) *revision {
	for _, r := range rec.History {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// record converts rec for the policy, the kept specs made whole with the
// secrets of current (the plug's desired specs now).
func (rec *plugRollout) record(current []instance.Spec) reconcile.PlugRecord {
	var out reconcile.PlugRecord
	if rec == nil {
		return out
	}
	if r := rec.find(rec.LastHealthy); r != nil && r.Specs != nil {
		out.LastHealthy = &reconcile.Revision{Hash: r.ID, Specs: restoreSecrets(r.Specs, current)}
	}
	if h := rec.Hold; h != nil {
		out.Hold = &reconcile.Hold{Hash: h.Desired, Reason: h.Reason, Pinned: h.Kind == api.RolloutPinned}
		if r := rec.find(h.Runs); r != nil && r.Specs != nil {
			out.Hold.Specs = restoreSecrets(r.Specs, current)
		}
	}
	if rec.Active != nil {
		out.Active = rec.Active.Target
	}
	return out
}

// note adds (or refreshes) revision r's entry and bounds the history.
func (rec *plugRollout) note(r *revision) *revision {
	if old := rec.find(r.ID); old != nil {
		rec.History = slices.DeleteFunc(rec.History, func(x *revision) bool { return x == old })
		if r.Specs == nil {
			r.Specs = old.Specs
		}
	}
	rec.History = append(rec.History, r)
	keep := func(x *revision) bool { return x.ID == rec.LastHealthy || rec.Hold != nil && x.ID == rec.Hold.Runs }
	for len(rec.History) > maxHistory {
		i := slices.IndexFunc(rec.History, func(x *revision) bool { return !keep(x) })
		if i < 0 {
			break
		}
		rec.History = slices.Delete(rec.History, i, i+1)
	}
	restorable := 0
	for i := len(rec.History) - 1; i >= 0; i-- {
		x := rec.History[i]
		switch {
		case x.Specs == nil || keep(x):
		case x.Verdict != api.RolloutHealthy:
			x.Specs = nil // only a healthy revision is returned to
		default:
			if restorable++; restorable > maxRestorable {
				x.Specs = nil
			}
		}
	}
	return r
}

// save writes rec, durably: a rollout's state must survive a crash.
func (ro *rollouts) save(rec *plugRollout) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(ro.dir, 0o700); err != nil {
		return fmt.Errorf("rollout record: %w", err)
	}
	return atomicfile.Write(filepath.Join(ro.dir, rec.Plug+".json"), b, 0o600, atomicfile.Durable)
}

// recordOf is plug's record, made when it has none. Called with ro.mu held.
func (ro *rollouts) recordOf(plug string) *plugRollout {
	rec := ro.recs[plug]
	if rec == nil {
		rec = &plugRollout{Plug: plug}
		ro.recs[plug] = rec
	}
	return rec
}

// poke wakes plug's rollout, if one runs: an instance's status or health
// changed.
func (ro *rollouts) poke(plug string) {
	if ro == nil {
		return
	}
	ro.mu.Lock()
	r := ro.live[plug]
	ro.mu.Unlock()
	if r != nil {
		select {
		case r.poke <- struct{}{}:
		default:
		}
	}
}

// close cancels every rollout and waits for them (before the runner
// stops the instances).
func (ro *rollouts) close() {
	ro.mu.Lock()
	for _, r := range ro.live {
		r.cancel()
	}
	ro.mu.Unlock()
	ro.wg.Wait()
}

// byPlug groups specs by plug, keeping their order, and lists the plugs in
// order of first appearance.
func byPlug(specs []instance.Spec) (map[string][]instance.Spec, []string) {
	out := map[string][]instance.Spec{}
	var order []string
	for _, s := range specs {
		if _, ok := out[s.ID.Plug]; !ok {
			order = append(order, s.ID.Plug)
		}
		out[s.ID.Plug] = append(out[s.ID.Plug], s)
	}
	return out, order
}

func observedByPlug(obs []instance.Status) map[string][]instance.Status {
	out := map[string][]instance.Status{}
	for _, o := range obs {
		out[o.ID.Plug] = append(out[o.ID.Plug], o)
	}
	return out
}

// decideRollouts decides every desired plug: the specs the reconcile
// applies at once, and each plug's decision. It changes nothing.
func (d *daemon) decideRollouts(services []instance.Spec, observed []instance.Status) ([]instance.Spec, map[string]reconcile.PlugDecision) {
	desired, order := byPlug(services)
	obs := observedByPlug(observed)
	decs := make(map[string]reconcile.PlugDecision, len(order))
	var out []instance.Spec
	d.ro.mu.Lock()
	defer d.ro.mu.Unlock()
	for _, plug := range order {
		dec := reconcile.DecidePlug(desired[plug], obs[plug], d.ro.recs[plug].record(desired[plug]))
		decs[plug] = dec
		out = append(out, dec.Desired...)
	}
	return out, decs
}

// startRollouts acts on the decisions after the reconcile applied what
// they apply at once: holds dropped, rollouts superseded and begun.
// Called with mu held.
func (d *daemon) startRollouts(services []instance.Spec, decs map[string]reconcile.PlugDecision) {
	desired, _ := byPlug(services)
	now := time.Now()
	ro := d.ro
	ro.mu.Lock()
	defer ro.mu.Unlock()
	ro.desired = desired
	defer ro.keepJudged()
	clear(ro.held)
	for plug, r := range ro.live {
		if dec, ok := decs[plug]; !ok || !dec.Judge || dec.Target != r.target {
			d.supersedeLocked(r, now)
		}
	}
	for plug, dec := range decs {
		rec := ro.recs[plug]
		if dec.Held != "" {
			ro.held[plug] = dec.Held
		}
		if dec.DropHold && rec != nil && rec.Hold != nil {
			d.log.Info("rollout hold ended: the plug's desired state changed", "plug", plug, "held", rec.Hold.Reason)
			rec.Hold = nil
			delete(ro.outcome, plug)
			d.saveRecord(rec)
		}
		if !dec.Judge || ro.live[plug] != nil {
			continue
		}
		d.beginLocked(plug, dec, desired[plug], now)
	}
}

// keepJudged keeps in desired only the plugs with an update {} block or
// a record, the only ones read from it: the specs of the others are not
// kept between reconciles (~0.7 MB at 1,000 plugs). Called with ro.mu
// held.
func (ro *rollouts) keepJudged() {
	kept := map[string][]instance.Spec{}
	for plug, specs := range ro.desired {
		if len(specs) > 0 && specs[0].Update != nil || ro.recs[plug] != nil {
			kept[plug] = specs
		}
	}
	ro.desired = kept
}

// beginLocked starts plug's rollout to dec.Target. Called with mu and
// ro.mu held.
func (d *daemon) beginLocked(plug string, dec reconcile.PlugDecision, specs []instance.Spec, now time.Time) {
	ro := d.ro
	policy := specs[0].Update
	if policy == nil {
		return
	}
	var stages []rolloutStage
	if len(dec.Watch) > 0 {
		stages = append(stages, rolloutStage{ids: dec.Watch})
	}
	for _, b := range reconcile.Batches(dec.Rollout, policy.MaxParallel) {
		st := rolloutStage{apply: b}
		for _, c := range b {
			st.ids = append(st.ids, c.ID)
		}
		stages = append(stages, st)
	}
	if len(stages) == 0 { // nothing changes now, and the target has no verdict yet: judge it as it runs
		st := rolloutStage{}
		for _, s := range specs {
			st.ids = append(st.ids, s.ID)
		}
		stages = append(stages, st)
	}
	rec := ro.recordOf(plug)
	from := rec.LastHealthy
	reason := ""
	resumed := ""
	switch {
	case dec.Resumed && rec.Active != nil && rec.Active.Target == dec.Target:
		resumed = "started over after a daemon restart"
		reason = fmt.Sprintf("the daemon stopped in the middle of this rollout; started over from the last healthy revision %s", from)
		d.log.Warn("rollout interrupted by a daemon restart: started over", "plug", plug, "revision", dec.Target, "from", from)
	case dec.Resumed:
		resumed = "rolled out from the last healthy revision after a daemon restart: the plug changed while it was down"
		reason = fmt.Sprintf("the plug changed while the daemon was down; rolled out from the last healthy revision %s", from)
		d.log.Warn("the plug changed while the daemon was down: rolled out from the last healthy revision", "plug", plug, "revision", dec.Target, "from", from)
	}
	if dec.Interrupted != "" {
		if e := rec.find(dec.Interrupted); e != nil && e.Verdict == api.RolloutProgressing {
			e.Verdict, e.Judged, e.Reason = api.RolloutSuperseded, now, "the daemon stopped in the middle of this rollout, and plugs.hcl changed the plug before it ran again"
		}
	}
	rec.Active = &activeRecord{Target: dec.Target, From: from, Started: now}
	rec.note(&revision{ID: dec.Target, Revision: specs[0].Revision, Version: specs[0].Version,
		Verdict: api.RolloutProgressing, Reason: reason, Deployed: now})
	d.saveRecord(rec)

	ctx, cancel := context.WithCancel(context.Background())
	r := &liveRollout{plug: plug, target: dec.Target, policy: *policy, specs: slices.Clone(specs), stages: stages,
		resumed: resumed, ctx: ctx, cancel: cancel, poke: make(chan struct{}, 1), started: now, stageStart: now}
	ro.live[plug] = r
	d.log.Info("rollout started", "plug", plug, "revision", dec.Target, "from", from, "batches", len(stages), "max_parallel", policy.MaxParallel)
	ro.wg.Go(func() { d.runRollout(r) })
}

// supersedeLocked cancels r: the plug's desired state changed. Called with
// mu and ro.mu held.
func (d *daemon) supersedeLocked(r *liveRollout, now time.Time) {
	r.cancel()
	delete(d.ro.live, r.plug)
	rec := d.ro.recordOf(r.plug)
	if e := rec.find(r.target); e != nil && e.Verdict == api.RolloutProgressing {
		e.Verdict, e.Judged, e.Reason = api.RolloutSuperseded, now, "the desired state changed before a verdict"
	}
	if rec.Active != nil && rec.Active.Target == r.target {
		rec.Active = nil
	}
	d.saveRecord(rec)
	d.log.Info("rollout superseded", "plug", r.plug, "revision", r.target)
}

func (d *daemon) saveRecord(rec *plugRollout) {
	if err := d.ro.save(rec); err != nil {
		d.log.Error("save rollout record", "plug", rec.Plug, "err", err)
	}
}

// runRollout replaces r's batches one after the other, each once the one
// before was judged healthy, and records the verdict.
func (d *daemon) runRollout(r *liveRollout) {
	for i, st := range r.stages {
		if len(st.apply) > 0 {
			d.mu.Lock()
			if r.ctx.Err() != nil {
				d.mu.Unlock()
				return
			}
			res := reconcile.Apply(r.ctx, d.runner, &reconcile.Plan{Changes: st.apply}, reconcile.ApplyOptions{Logger: d.log, Parallelism: d.opts.ApplyParallelism})
			d.mu.Unlock()
			if err := res.Err(); err != nil {
				if r.ctx.Err() == nil {
					d.rolloutFailed(r, time.Now(), fmt.Sprintf("batch %d of %d: %s", i+1, len(r.stages), strings.Join(strings.Fields(err.Error()), " ")))
				}
				return
			}
		}
		start := time.Now()
		d.ro.mu.Lock()
		r.stage, r.stageStart = i, start
		d.ro.mu.Unlock()
		d.notifyUI()
		base := map[instance.ID]int{}
		for _, o := range d.runner.Observe() {
			if slices.Contains(st.ids, o.ID) {
				base[o.ID] = o.Restarts
			}
		}
		for {
			v, wake, why := reconcile.BatchVerdict(time.Now(), start, r.policy, d.observeBatch(r, st.ids, base))
			if v == reconcile.Healthy {
				d.log.Info("rollout batch healthy", "plug", r.plug, "revision", r.target, "batch", i+1, "of", len(r.stages))
				break
			}
			if v == reconcile.Failed {
				missed := start.Add(r.policy.HealthyDeadline)
				if now := time.Now(); now.Before(missed) { // an instance that gave up fails it before
					missed = now
				}
				d.rolloutFailed(r, missed, fmt.Sprintf("batch %d of %d (healthy_deadline %s): %s", i+1, len(r.stages), r.policy.HealthyDeadline, why))
				return
			}
			d.notifyUI() // the batch's healthy and unproven counts change as time passes too
			timer := time.NewTimer(time.Until(wake))
			select {
			case <-r.ctx.Done():
				timer.Stop()
				return
			case <-r.poke:
			case <-timer.C:
			}
			timer.Stop()
		}
	}
	d.rolloutDone(r)
}

// observeBatch is what the runner and the health checks say of ids.
func (d *daemon) observeBatch(r *liveRollout, ids []instance.ID, base map[instance.ID]int) map[instance.ID]reconcile.Observation {
	want := map[instance.ID]string{}
	for _, s := range r.specs {
		want[s.ID] = reconcile.PlugHash([]instance.Spec{s})
	}
	obs := make(map[instance.ID]reconcile.Observation, len(ids))
	for _, id := range ids {
		obs[id] = reconcile.Observation{Failure: "not running"}
	}
	for _, st := range d.runner.Observe() {
		if _, ok := obs[st.ID]; !ok {
			continue
		}
		o := reconcile.Observation{
			OnTarget: reconcile.PlugHash([]instance.Spec{st.Spec}) == want[st.ID],
			Running:  st.State == instance.StateRunning,
			// The health checks hear of a restart through the runner's
			// observer, later than Observe: StartedAt tells BatchVerdict
			// when their reading is of a process before this one.
			StartedAt: st.StartedAt,
			Restarts:  st.Restarts - base[st.ID],
			GaveUp:    st.GaveUp,
		}
		if h, ok := d.health.status(st.ID); ok {
			o.Ready, o.Passing, o.HealthySince, o.Failure = h.Ready, h.Passing(), h.HealthySince, h.LastFailure
		}
		if !o.Running && o.Failure == "" {
			o.Failure = cmp.Or(st.Reason, string(st.State))
		}
		obs[st.ID] = o
	}
	return obs
}

// rolloutDone records a healthy rollout: its revision is the plug's last
// healthy one.
func (d *daemon) rolloutDone(r *liveRollout) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	d.ro.mu.Lock()
	if r.ctx.Err() != nil || d.ro.live[r.plug] != r {
		d.ro.mu.Unlock()
		return
	}
	delete(d.ro.live, r.plug)
	rec := d.ro.recordOf(r.plug)
	rec.LastHealthy, rec.Active = r.target, nil
	e := rec.note(&revision{ID: r.target, Revision: r.specs[0].Revision, Version: r.specs[0].Version, Verdict: api.RolloutHealthy,
		Deployed: r.started, Judged: now, Specs: withoutSecrets(r.specs)})
	if f := rec.find(r.target); f != nil {
		e.Deployed = cmp.Or(f.Deployed, r.started)
	}
	delete(d.ro.outcome, r.plug)
	d.saveRecord(rec)
	d.ro.mu.Unlock()
	r.cancel()
	d.health.metrics.RolloutDone(metrics.RolloutSuccess)
	d.log.Info("rollout healthy", "plug", r.plug, "revision", r.target, "took", now.Sub(r.started).Round(time.Millisecond))
	d.republishReconcile()
	d.notifyUI()
}

// rolloutCounts is how many of plug's instances on the rollout's target
// are healthy for min_healthy_time, by the rule that judges a batch, and
// how many are not yet (unproven); ok is false when plug does not roll
// out now. An instance of an earlier batch is judged from the rollout's
// start, one of the batch under way from the batch's.
func (d *daemon) rolloutCounts(plug string) (healthy, unproven int, ok bool) {
	d.ro.mu.Lock()
	r := d.ro.live[plug]
	var ids []instance.ID
	var current map[instance.ID]bool
	var stageStart, started time.Time
	if r != nil {
		stageStart, started, current = r.stageStart, r.started, map[instance.ID]bool{}
		for i, st := range r.stages {
			if i > r.stage {
				break
			}
			ids = append(ids, st.ids...)
			if i == r.stage {
				for _, id := range st.ids {
					current[id] = true
				}
			}
		}
	}
	d.ro.mu.Unlock()
	if r == nil {
		return 0, 0, false
	}
	now := time.Now()
	for id, o := range d.observeBatch(r, ids, nil) {
		if !o.OnTarget || !o.Running {
			continue
		}
		start := started
		if current[id] {
			start = stageStart
		}
		if v, _, _ := reconcile.BatchVerdict(now, start, r.policy, map[instance.ID]reconcile.Observation{id: o}); v == reconcile.Healthy {
			healthy++
		} else {
			unproven++
		}
	}
	return healthy, unproven, true
}

// rolloutFailed records a failed rollout, and with auto_revert puts the
// plug back on its last healthy revision at once. Either way the failed
// revision is held off until the plug's desired state changes. missed is
// when the batch failed (its deadline): the log says how long after it
// the old revision ran again.
func (d *daemon) rolloutFailed(r *liveRollout, missed time.Time, why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	ro := d.ro
	ro.mu.Lock()
	if r.ctx.Err() != nil || ro.live[r.plug] != r {
		ro.mu.Unlock()
		return
	}
	delete(ro.live, r.plug)
	r.cancel()
	rec := ro.recordOf(r.plug)
	rec.Active = nil
	why = d.redact(why)
	var back *revision
	var backSpecs []instance.Spec
	if r.policy.AutoRevert {
		if b := rec.find(rec.LastHealthy); b != nil && b.Specs != nil {
			current := ro.desired[r.plug]
			if current == nil {
				current = r.specs
			}
			back, backSpecs = b, restoreSecrets(b.Specs, current)
		}
	}
	result := metrics.RolloutFailed
	hold := &holdRecord{Desired: r.target, Kind: api.RolloutFailed, At: now,
		Reason: fmt.Sprintf("rollout of %s failed: %s; not tried again until plugs.hcl changes the plug", r.target, why)}
	if back != nil {
		result = metrics.RolloutReverted
		hold.Kind, hold.Runs = api.RolloutReverted, back.ID
		hold.Reason = fmt.Sprintf("reverted to %s: the rollout of %s failed: %s", back.ID, r.target, why)
	} else if r.policy.AutoRevert {
		hold.Reason += " (no healthy revision to revert to)"
	}
	rec.note(&revision{ID: r.target, Revision: r.specs[0].Revision, Version: r.specs[0].Version, Verdict: api.RolloutFailed,
		Reason: why, Deployed: r.started, Judged: now})
	d.holdLocked(rec, hold) // saved before the revert: a daemon killed during it reverts at start
	if back != nil {
		ro.reverting[r.plug] = true
	}
	ro.mu.Unlock()

	d.log.Error("rollout failed", "plug", r.plug, "revision", r.target, "reverting_to", hold.Runs, "err", why)
	if back != nil {
		ctx, cancel := context.WithTimeout(context.Background(), d.opts.ReconcileTimeout)
		defer cancel()
		n, err := d.applyPlug(ctx, r.plug, backSpecs)
		ro.mu.Lock()
		delete(ro.reverting, r.plug)
		if err != nil {
			// Said as it is: the revision failed and so did the revert (a
			// tree gone from the store, a start that fails).
			result = metrics.RolloutFailed
			d.holdLocked(rec, &holdRecord{Desired: r.target, Kind: api.RolloutFailed, At: hold.At,
				Reason: fmt.Sprintf("rollout of %s failed: %s; the revert to %s failed too: %v; not tried again until plugs.hcl changes the plug", r.target, why, back.ID, err)})
		}
		ro.mu.Unlock()
		if err != nil {
			d.log.Error("revert failed", "plug", r.plug, "to", back.ID, "err", err)
		} else {
			d.log.Info("reverted", "plug", r.plug, "to", back.ID, "replaced", n, "after_deadline", time.Since(missed).Round(time.Microsecond))
		}
	}
	d.health.metrics.RolloutDone(result)
	d.republishReconcile()
	d.notifyUI()
}

// applyPlug converges plug's instances to specs at once (a revert, a
// rollback) and returns how many it replaced, or why it could not (a start
// that failed: the runner verifies each tree before it starts a process in
// it; redacted). Called with mu held.
func (d *daemon) applyPlug(ctx context.Context, plug string, specs []instance.Spec) (int, error) {
	var observed []instance.Status
	for _, o := range d.runner.Observe() {
		if o.ID.Plug == plug {
			observed = append(observed, o)
		}
	}
	plan := reconcile.NewPlan(specs, observed)
	res := reconcile.Apply(ctx, d.runner, plan, reconcile.ApplyOptions{Logger: d.log, Parallelism: d.opts.ApplyParallelism})
	if err := res.Err(); err != nil {
		return 0, errors.New(d.redact(err.Error()))
	}
	_, replaced, _ := plan.Summary()
	return replaced, nil
}

// republishReconcile sends the last reconcile's MQTT message again, with
// the rollouts as they are now.
func (d *daemon) republishReconcile() {
	d.smu.Lock()
	last := d.last
	d.smu.Unlock()
	if last == nil {
		return
	}
	d.broker.pub.PublishReconcile(mqttReconcile(last, d.rolloutOutcomes()))
}

// rolloutOutcomes lists the plugs whose rollout is under way, failed,
// reverted or pinned, for MQTT.
func (d *daemon) rolloutOutcomes() []mqtt.RolloutOutcome {
	if d.ro == nil {
		return nil
	}
	d.ro.mu.Lock()
	defer d.ro.mu.Unlock()
	out := slices.Collect(maps.Values(d.ro.outcome))
	for plug, r := range d.ro.live {
		if _, ok := d.ro.outcome[plug]; !ok {
			out = append(out, mqtt.RolloutOutcome{Plug: plug, Result: api.RolloutProgressing, Revision: r.target})
		}
	}
	slices.SortFunc(out, func(a, b mqtt.RolloutOutcome) int { return strings.Compare(a.Plug, b.Plug) })
	return out
}

// rolloutStatuses is the rollout part of plugs status.
func (d *daemon) rolloutStatuses(observed []instance.Status) []api.RolloutStatus {
	obs := observedByPlug(observed)
	ro := d.ro
	ro.mu.Lock()
	defer ro.mu.Unlock()
	plugs := map[string]bool{}
	for p := range ro.recs {
		plugs[p] = true
	}
	for p, specs := range ro.desired {
		if len(specs) > 0 && specs[0].Update != nil {
			plugs[p] = true
		}
	}
	var out []api.RolloutStatus
	for _, plug := range slices.Sorted(maps.Keys(plugs)) {
		desired := ro.desired[plug]
		if desired == nil {
			continue // not in the running configuration
		}
		rec := ro.recs[plug]
		s := api.RolloutStatus{Plug: plug, Revision: reconcile.PlugHash(desired), Instances: len(desired)}
		want := map[instance.ID]string{}
		for _, sp := range desired {
			want[sp.ID] = reconcile.PlugHash([]instance.Spec{sp})
		}
		for _, o := range obs[plug] {
			if o.State != instance.StateStopped && want[o.ID] == reconcile.PlugHash([]instance.Spec{o.Spec}) {
				s.OnTarget++
			}
		}
		if rec != nil {
			s.LastHealthy = rec.LastHealthy
		}
		switch r := ro.live[plug]; {
		case r != nil:
			s.State, s.Revision, s.Batch, s.Batches, s.Since = api.RolloutProgressing, r.target, r.stage+1, len(r.stages), r.started
			s.Reason = r.resumed
		case rec != nil && rec.Hold != nil && ro.reverting[plug]:
			s.State, s.Reason, s.Override, s.Since = api.RolloutProgressing, "reverting: "+rec.Hold.Reason, rec.Hold.Runs, rec.Hold.At
		case rec != nil && rec.Hold != nil && ro.held[plug] != "":
			s.State, s.Reason, s.Override, s.Since = rec.Hold.Kind, rec.Hold.Reason, rec.Hold.Runs, rec.Hold.At
		case rec != nil && rec.LastHealthy == s.Revision:
			s.State = api.RolloutHealthy
			if e := rec.find(rec.LastHealthy); e != nil {
				s.Since = e.Judged
			}
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}

// planRollouts says how the plan's changes of each plug roll out.
func (d *daemon) planRollouts(decs map[string]reconcile.PlugDecision) []api.PlanRollout {
	d.ro.mu.Lock()
	defer d.ro.mu.Unlock()
	var out []api.PlanRollout
	for _, plug := range slices.Sorted(maps.Keys(decs)) {
		dec := decs[plug]
		switch {
		case dec.Held != "":
			out = append(out, api.PlanRollout{Plug: plug, Held: dec.Held})
		case dec.Judge && len(dec.Rollout) > 0:
			u := dec.Rollout[0].After.Update
			if u == nil {
				continue
			}
			p := api.PlanRollout{Plug: plug, Replaces: len(dec.Rollout), MaxParallel: u.MaxParallel,
				MinHealthyTime: u.MinHealthyTime, HealthyDeadline: u.HealthyDeadline, AutoRevert: u.AutoRevert}
			if rec := d.ro.recs[plug]; u.AutoRevert && rec != nil {
				p.RevertTo = rec.LastHealthy
			}
			out = append(out, p)
		}
	}
	return out
}

// noRollout is why plug has no rollout record: it runs no instance here
// (a name plugs.hcl does not declare, or a task), or, as format says, it
// has no update {} block.
func (d *daemon) noRollout(plug, format string) error {
	for _, o := range d.runner.Observe() {
		if o.ID.Plug == plug {
			return &api.Error{Kind: api.KindInput, Message: fmt.Sprintf(format, plug)}
		}
	}
	return &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("plug %s runs no instance here: plugs.hcl declares no such service plug", plug)}
}

// history is GET /v1/history.
func (d *daemon) history(plug string) (*api.History, error) {
	d.ro.mu.Lock()
	defer d.ro.mu.Unlock()
	rec := d.ro.recs[plug]
	if rec == nil {
		return nil, d.noRollout(plug, "no history for plug %s: only plugs with an update {} block have their revisions judged")
	}
	runs := ""
	if desired := d.ro.desired[plug]; desired != nil {
		runs = reconcile.PlugHash(desired)
	}
	if rec.Hold != nil && d.ro.held[plug] != "" && rec.Hold.Runs != "" {
		runs = rec.Hold.Runs
	}
	if r := d.ro.live[plug]; r != nil {
		runs = "" // half and half: the status says which instance runs what
	}
	h := &api.History{Plug: plug, Entries: []api.HistoryEntry{}}
	for i := len(rec.History) - 1; i >= 0; i-- {
		e := rec.History[i]
		h.Entries = append(h.Entries, api.HistoryEntry{
			ID: e.ID, Revision: e.Revision, Version: e.Version, Verdict: e.Verdict, Reason: e.Reason,
			Deployed: e.Deployed, Judged: e.Judged, Runs: e.ID == runs, LastHealthy: e.ID == rec.LastHealthy,
			Restorable: e.Specs != nil,
		})
	}
	return h, nil
}

// rollback is POST /v1/rollback: pin the plug's last healthy revision (or
// the one named) until plugs.hcl changes the plug, and apply it now.
func (d *daemon) rollback(ctx context.Context, req api.RollbackRequest) (*api.RollbackReport, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ro := d.ro
	ro.mu.Lock()
	rec := ro.recs[req.Plug]
	desired := ro.desired[req.Plug]
	if rec == nil || desired == nil {
		ro.mu.Unlock()
		return nil, d.noRollout(req.Plug, "no revision of plug %s to roll back to: it has no update {} block")
	}
	target := reconcile.PlugHash(desired)
	to, err := rec.pick(req.To, target)
	if err != nil {
		ro.mu.Unlock()
		return nil, err
	}
	if r := ro.live[req.Plug]; r != nil {
		d.supersedeLocked(r, time.Now())
	}
	d.holdLocked(rec, &holdRecord{Desired: target, Kind: api.RolloutPinned, Runs: to.ID, At: time.Now(),
		Reason: fmt.Sprintf("rolled back to %s by plugs rollback; plugs.hcl's %s is not applied until plugs.hcl changes the plug", to.ID, target)})
	specs := restoreSecrets(to.Specs, desired)
	ro.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opts.ReconcileTimeout)
	defer cancel()
	n, err := d.applyPlug(ctx, req.Plug, specs)
	if err != nil {
		ro.mu.Lock()
		reason := fmt.Sprintf("the rollback to %s failed: %v; plugs.hcl's %s is not applied until plugs.hcl changes the plug", to.ID, err, target)
		d.holdLocked(rec, &holdRecord{Desired: target, Kind: api.RolloutFailed, Reason: reason, At: time.Now()})
		ro.mu.Unlock()
		d.log.Error("rollback failed", "plug", req.Plug, "to", to.ID, "err", err)
		d.republishReconcile()
		d.notifyUI()
		return nil, &api.Error{Kind: api.KindEnv, Message: reason}
	}
	d.log.Info("rolled back", "plug", req.Plug, "to", to.ID, "revision", to.Revision, "replaced", n)
	d.republishReconcile()
	d.notifyUI()
	return &api.RollbackReport{Plug: req.Plug, To: to.ID, Revision: to.Revision, Replaced: n, Until: "plugs.hcl changes the plug"}, nil
}

// pick finds the revision plugs rollback returns to: the one named (its
// id, or a prefix of its id or of its plugin revision), or the newest
// healthy one other than target (what plugs.hcl asks for).
func (rec *plugRollout) pick(name, target string) (*revision, error) {
	var found []*revision
	for i := len(rec.History) - 1; i >= 0; i-- {
		e := rec.History[i]
		switch {
		case name == "" && e.Verdict == api.RolloutHealthy && e.ID != target && e.Specs != nil:
			return e, nil
		case name != "" && e.ID == name:
			found = []*revision{e}
		case name != "" && (strings.HasPrefix(e.ID, name) || strings.HasPrefix(e.Revision, name)):
			found = append(found, e)
		}
		if len(found) == 1 && found[0].ID == name {
			break
		}
	}
	switch {
	case name == "":
		return nil, &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("plug %s has no healthy revision other than %s to roll back to (see plugs history %s)", rec.Plug, target, rec.Plug)}
	case len(found) == 0:
		return nil, &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("plug %s has no revision %s (see plugs history %s)", rec.Plug, name, rec.Plug)}
	case len(found) > 1:
		return nil, &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("%s names several revisions of plug %s: give more of its id", name, rec.Plug)}
	case found[0].Specs == nil:
		return nil, &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("revision %s of plug %s was %s: only its last %d healthy revisions can be rolled back to", found[0].ID, rec.Plug, found[0].Verdict, maxRestorable)}
	}
	return found[0], nil
}

// rolloutBackend is what GET /v1/history and POST /v1/rollback need.
type rolloutBackend interface {
	history(plug string) (*api.History, error)
	rollback(ctx context.Context, req api.RollbackRequest) (*api.RollbackReport, error)
}

var _ rolloutBackend = (*daemon)(nil)

// registerRollouts adds plugs history and plugs rollback to the API when b
// has them.
func registerRollouts(mux *http.ServeMux, b backend) {
	rb, ok := b.(rolloutBackend)
	if !ok {
		return
	}
	mux.HandleFunc("GET /v1/history", func(w http.ResponseWriter, r *http.Request) {
		plug := r.URL.Query().Get("plug")
		if plug == "" {
			writeError(w, &api.Error{Kind: api.KindInput, Message: "history needs a plug"})
			return
		}
		h, err := rb.history(plug)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, h)
	})
	mux.HandleFunc("POST /v1/rollback", func(w http.ResponseWriter, r *http.Request) {
		var req api.RollbackRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Plug == "" {
			writeError(w, &api.Error{Kind: api.KindInput, Message: "rollback needs a plug"})
			return
		}
		rep, err := rb.rollback(r.Context(), req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
}

// withoutSecrets is specs as a record keeps them: without Config, which
// holds secrets (secret params, the broker password); Redacted stays.
// restoreSecrets makes them whole again.
func withoutSecrets(specs []instance.Spec) []instance.Spec {
	out := slices.Clone(specs)
	for i := range out {
		out[i].Config, out[i].ConfigHash = nil, ""
	}
	return out
}

// restoreSecrets gives kept specs their configs back: each one's redacted
// config with the secrets of the same instance's current config (as
// render.RestoreSecrets does). A spec kept whole (a record of an older
// daemon) is returned as it is; an instance whose secrets current lacks
// (it is no longer desired) is left out: it could not connect.
func restoreSecrets(kept, current []instance.Spec) []instance.Spec {
	cur := make(map[instance.ID][]byte, len(current))
	for _, s := range current {
		cur[s.ID] = s.Config
	}
	out := make([]instance.Spec, 0, len(kept))
	for _, s := range kept {
		if s.Config == nil {
			config, ok, err := render.RestoreSecrets(s.Redacted, cur[s.ID])
			if err != nil || !ok {
				continue
			}
			sum := sha256.Sum256(config)
			s.Config, s.ConfigHash = config, hex.EncodeToString(sum[:])
		}
		out = append(out, s)
	}
	return out
}
