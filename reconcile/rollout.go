package reconcile

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/plugs-dev/plugs/instance"
)

// The rollout policy: Nomad's update stanza as pure decisions. The daemon
// (daemon/rollout.go) holds the state, the timers and the effects; here
// every decision is a function of its inputs, time included.
//
//   - PlugHash names what a plug's instances run (its "revision" for
//     rollouts: the plugin revision and the rendered config of every
//     instance, and everything else whose change replaces one).
//   - DecidePlug, at every reconcile, splits a plug's change into what is
//     applied at once (creates, deletes, in-place updates, or a pinned
//     revision) and the replaces left to roll out in batches.
//   - Batches cuts those replaces into batches of max_parallel.
//   - BatchVerdict judges a batch from health observations: healthy
//     (every instance healthy for min_healthy_time), failed (not so by
//     healthy_deadline, or an instance that gave up), or not yet, with the
//     time at which to judge again.

// PlugHash is a short hex id of what the instances of one plug run: every
// field whose change replaces an instance (see compare), of every instance,
// in instance order. Two desired states of a plug with the same hash need
// no replace between them. specs may hold other plugs' specs: only their
// IDs differ, and the caller passes one plug's.
func PlugHash(specs []instance.Spec) string {
	type key struct {
		Instance            string
		Revision, Config    string
		Command             []string
		Env                 map[string]string
		Dir, User, Group    string
		Limits              instance.Limits
		Permissions, Groups []string
		NoSandbox           bool
		Hooks               instance.Hooks
		SetupRequired       bool
	}
	keys := make([]key, 0, len(specs))
	for _, s := range specs {
		keys = append(keys, key{
			Instance: s.ID.Instance, Revision: s.Revision, Config: s.ConfigHash, Command: s.Command, Env: s.Env,
			Dir: s.Dir, User: s.User, Group: s.Group, Limits: s.Limits, Permissions: s.Permissions, Groups: s.Groups,
			NoSandbox: s.NoSandbox, Hooks: s.Hooks, SetupRequired: s.SetupRequired,
		})
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Compare(a.Instance, b.Instance) })
	b, _ := json.Marshal(keys) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:12]
}

// PlugRecord is what the daemon remembers of one plug's rollouts, across
// reconciles and restarts: its last healthy revision, a hold, and the
// target of a rollout under way.
type PlugRecord struct {
	// LastHealthy is the last revision of the plug that was judged healthy
	// (nil: none yet): what a failed rollout reverts to.
	LastHealthy *Revision
	// Hold keeps the plug off its desired state while that state is the
	// one it was set against.
	Hold *Hold
	// Active is the PlugHash of the rollout under way ("" none). A daemon
	// that finds one at start was killed in the middle of it.
	Active string
}

// Revision is one revision of a plug: its hash and the specs it ran.
type Revision struct {
	Hash  string
	Specs []instance.Spec
}

// Hold is a revision pinned against a desired state (Hash): the revision a
// failed rollout reverted to, the one plugs rollback named, or (Specs nil)
// whatever runs after a rollout failed without auto_revert. It holds until
// the plug's desired state is another one: the failed revision is not
// tried again, the pinned one not left, until plugs.hcl changes the plug.
type Hold struct {
	Hash   string          // the desired state it holds against
	Specs  []instance.Spec // what runs instead; nil: leave what runs
	Reason string          // one line, for status and plan
	// Pinned marks a hold made by hand (plugs rollback): it outlives the
	// plug's update {} block. A failed rollout's hold does not: without
	// the block, changes apply at once.
	Pinned bool
}

// PlugDecision is what a reconcile does with one plug.
type PlugDecision struct {
	// Desired is what the reconcile's apply converges the plug to at once:
	// the desired specs, except that instances to be replaced keep their
	// running spec (the rollout replaces them), or a held revision.
	Desired []instance.Spec
	// Target is the PlugHash of the plug's desired state ("" for a plug
	// with neither an update policy nor a hold: nothing to judge).
	Target string
	// Rollout lists the replaces (and, after a restart, the creates from
	// the last healthy revision) left to roll out in batches, in plan
	// order; Watch the instances that Desired creates on the target and
	// whose health judges the target first. Both are empty when nothing
	// is to be judged.
	Rollout []Change
	Watch   []instance.ID
	// Judge is set when the target has no verdict yet and the plug has a
	// policy: the daemon rolls it out (and judges it) unless a rollout to
	// the same target is already under way.
	Judge bool
	// Resumed says the plug starts on its last healthy revision after a
	// daemon restart (nothing runs) and is rolled out from there: an
	// interrupted rollout starting over, or a plug changed while the
	// daemon was down.
	Resumed bool
	// Interrupted is the target of a rollout a daemon restart cut short
	// and that is no longer desired (plugs.hcl changed the plug meanwhile):
	// it gets no verdict now ("" when none).
	Interrupted string
	// DropHold says the hold no longer applies: the desired state changed.
	DropHold bool
	// Held is the hold's reason while it applies, else "".
	Held string
}

// DecidePlug decides one plug's reconcile. desired and observed are the
// plug's own (observed: what the executor reports of its instances).
//
//   - A hold against this desired state applies: its specs run, or (a
//     failed rollout without auto_revert) what runs stays and what does
//     not run starts on the last healthy revision; nothing is judged
//     again. A failed rollout's hold ends with the update {} block.
//   - Without an update policy, the desired specs apply at once.
//   - With one, the replaces are left to a rollout, and the creates are
//     watched; a desired state already judged healthy is simply applied.
//   - After a restart (no instance runs) with a desired state not yet
//     judged healthy — a rollout cut short (rec.Active), to the same
//     target or, the plug changed meanwhile, to another one — the plug
//     starts on its last healthy revision and is rolled out from there in
//     batches: never every instance on an unproven revision at once.
func DecidePlug(desired []instance.Spec, observed []instance.Status, rec PlugRecord) PlugDecision {
	policy := policyOf(desired)
	if rec.Hold == nil && policy == nil {
		return PlugDecision{Desired: desired} // the common case, hashed for nothing
	}
	target := PlugHash(desired)
	dec := PlugDecision{Desired: desired, Target: target}
	if h := rec.Hold; h != nil {
		if h.Hash == target && (policy != nil || h.Pinned) {
			dec.Held = h.Reason
			if h.Specs != nil {
				dec.Desired = slices.Clone(h.Specs)
			} else {
				dec.Desired = keepRunning(desired, observed, rec.LastHealthy)
			}
			return dec
		}
		dec.DropHold = true
	}
	if policy == nil || len(desired) == 0 {
		return dec
	}
	if rec.LastHealthy != nil && rec.LastHealthy.Hash == target {
		return dec
	}
	running := slices.ContainsFunc(observed, func(st instance.Status) bool { return st.State != instance.StateStopped })
	if rec.LastHealthy != nil && len(rec.LastHealthy.Specs) > 0 && !running {
		// After a restart: no instance runs (the daemon's children die
		// with it). Start on the last healthy revision and roll out again.
		dec.Desired, dec.Resumed, dec.Judge = slices.Clone(rec.LastHealthy.Specs), true, true
		if rec.Active != "" && rec.Active != target {
			dec.Interrupted = rec.Active
		}
		before := make(map[instance.ID]*instance.Spec, len(rec.LastHealthy.Specs))
		for i := range rec.LastHealthy.Specs {
			before[rec.LastHealthy.Specs[i].ID] = &rec.LastHealthy.Specs[i]
		}
		for i := range desired {
			after := &desired[i]
			if b, ok := before[after.ID]; ok {
				c := compare(b, after)
				if c.Action == Replace {
					dec.Rollout = append(dec.Rollout, c)
				} else {
					dec.Desired = replaceSpec(dec.Desired, *after)
				}
			} else {
				dec.Desired = append(dec.Desired, *after)
				dec.Watch = append(dec.Watch, after.ID)
			}
		}
		dec.Desired = slices.DeleteFunc(dec.Desired, func(s instance.Spec) bool {
			return !slices.ContainsFunc(desired, func(d instance.Spec) bool { return d.ID == s.ID })
		})
		return dec
	}
	dec.Desired = slices.Clone(desired)
	for _, c := range NewPlan(desired, observed).Changes {
		switch c.Action {
		case Replace:
			dec.Rollout = append(dec.Rollout, c)
			dec.Desired = replaceSpec(dec.Desired, *c.Before)
		case Create:
			dec.Watch = append(dec.Watch, c.ID)
		}
	}
	dec.Judge = true
	return dec
}

// keepRunning is desired with every instance that runs kept on its
// running spec, and every other one (after a restart: all) started on the
// last healthy revision when it has the instance: the failed revision is
// not tried again.
func keepRunning(desired []instance.Spec, observed []instance.Status, healthy *Revision) []instance.Spec {
	out := slices.Clone(desired)
	runs := map[instance.ID]bool{}
	for _, st := range observed {
		if st.State != instance.StateStopped {
			out = replaceSpec(out, st.Spec)
			runs[st.ID] = true
		}
	}
	if healthy != nil {
		for _, s := range healthy.Specs {
			if !runs[s.ID] {
				out = replaceSpec(out, s)
			}
		}
	}
	return out
}

// replaceSpec replaces the spec of s.ID in specs by s.
func replaceSpec(specs []instance.Spec, s instance.Spec) []instance.Spec {
	for i := range specs {
		if specs[i].ID == s.ID {
			specs[i] = s
		}
	}
	return specs
}

// policyOf is the update policy of a plug's specs (the render gives every
// instance of a plug the same), or nil.
func policyOf(specs []instance.Spec) *instance.Update {
	for _, s := range specs {
		if s.Update != nil {
			return s.Update
		}
	}
	return nil
}

// Batches cuts changes into batches of at most maxParallel (at least 1),
// in order.
func Batches(changes []Change, maxParallel int) [][]Change {
	maxParallel = max(maxParallel, 1)
	var out [][]Change
	for len(changes) > 0 {
		n := min(maxParallel, len(changes))
		out = append(out, changes[:n:n])
		changes = changes[n:]
	}
	return out
}

// Observation is what the daemon sees of one instance of a batch.
type Observation struct {
	// OnTarget says it runs the spec the rollout wants (a replace that
	// could not start the new spec runs the old one again).
	OnTarget bool
	Running  bool
	// Ready: every check passed once since the process started; Passing:
	// ready and no check fails now; HealthySince: since when (zero: not).
	Ready, Passing bool
	HealthySince   time.Time
	// StartedAt is when the process that runs now started (zero: not
	// known). A HealthySince before it is the health of a process before
	// a restart, which the checks have not yet seen: it proves nothing of
	// this one.
	StartedAt time.Time
	// Restarts counts the restarts since the batch began.
	Restarts int
	// GaveUp: its restart policy is exhausted.
	GaveUp bool
	// Failure is the last failed check ("check: output"), or why it does
	// not run.
	Failure string
}

// Verdict is the judgement of a batch.
type Verdict int

// The verdicts of BatchVerdict.
const (
	Progressing Verdict = iota // not yet: judge again at the latest at wake
	Healthy                    // every instance healthy for min_healthy_time
	Failed                     // not healthy by the deadline, or gave up
)

// String names the verdict.
func (v Verdict) String() string {
	switch v {
	case Healthy:
		return "healthy"
	case Failed:
		return "failed"
	}
	return "progressing"
}

// BatchVerdict judges a batch begun at start, at now, under policy u: it is
// Healthy once every instance has run its target spec and been healthy
// (HealthySince) for u.MinHealthyTime in the same process, counted from
// start at the earliest: a restart starts the window over, and a health
// reading older than the running process (StartedAt) is not this
// process's, so the instance is not healthy (yet);
// Failed when an instance gave up, or at u.HealthyDeadline after start
// when it is not yet Healthy; else Progressing, to be judged again at wake
// at the latest (the first moment the verdict can change without a new
// observation). reason says why a batch failed, one clause per instance,
// sorted: "b: never ready (ready: no READY=1)", "c: crash loop (3
// restarts)", "d: unhealthy (web: exit 1)".
func BatchVerdict(now, start time.Time, u instance.Update, obs map[instance.ID]Observation) (v Verdict, wake time.Time, reason string) {
	deadline := start.Add(u.HealthyDeadline)
	wake = deadline
	var why []string // a clause per instance not (yet) healthy, in instance order
	gaveUp := false
	healthy := true
	for _, id := range slices.SortedFunc(maps.Keys(obs), func(a, b instance.ID) int {
		return cmp.Or(cmp.Compare(a.Plug, b.Plug), cmp.Compare(a.Instance, b.Instance))
	}) {
		o := obs[id]
		if o.Running && o.OnTarget && o.Passing && !o.HealthySince.IsZero() && !o.HealthySince.Before(o.StartedAt) {
			from := o.HealthySince
			if from.Before(start) {
				from = start
			}
			if at := from.Add(u.MinHealthyTime); at.After(now) {
				healthy = false
				clause := fmt.Sprintf("healthy for only %s of %s", now.Sub(from).Round(time.Millisecond), u.MinHealthyTime)
				if o.Restarts > 0 {
					clause = fmt.Sprintf("crash loop (%d restarts), %s", o.Restarts, clause)
				}
				why = append(why, id.Instance+": "+clause)
				if at.Before(wake) {
					wake = at
				}
			}
			continue
		}
		healthy = false
		if o.GaveUp {
			gaveUp = true
		}
		why = append(why, id.Instance+": "+notHealthy(o))
	}
	switch {
	case healthy:
		return Healthy, time.Time{}, ""
	case gaveUp || !now.Before(deadline):
		return Failed, time.Time{}, strings.Join(why, "; ")
	}
	return Progressing, wake, ""
}

// notHealthy says why one instance is not healthy.
func notHealthy(o Observation) string {
	detail := func(s string) string {
		if o.Failure == "" {
			return s
		}
		return s + " (" + o.Failure + ")"
	}
	switch {
	case !o.OnTarget:
		return detail("not running the new revision")
	case o.GaveUp:
		return detail(fmt.Sprintf("gave up after %d restarts", o.Restarts))
	case o.Restarts > 0:
		return detail(fmt.Sprintf("crash loop (%d restarts)", o.Restarts))
	case !o.Running:
		return detail("not running")
	case !o.HealthySince.IsZero() && o.HealthySince.Before(o.StartedAt):
		return detail("restarted, not yet checked")
	case !o.Ready:
		return detail("never ready")
	}
	return detail("unhealthy")
}
