package daemon

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile"
)

// failedReplace is a replace whose new spec could not start (its pre_start
// failed, its program is gone...), so that the previous spec was started
// again (reconcile.Outcome.RolledBack). The reconciles after it do not try
// the same spec again — each try stops the instance that runs, fails and
// starts it again: a needless restart at every file event or GitOps
// interval — until the desired spec changes or plugs apply asks (as Nomad
// does not place a failed job version again until a new one is submitted).
type failedReplace struct {
	target string // reconcile.PlugHash of the spec that failed
	err    string
	at     time.Time
}

// specHash identifies a desired spec as the rollouts do.
func specHash(s *instance.Spec) string { return reconcile.PlugHash([]instance.Spec{*s}) }

// holdFailedReplaces takes out of plan the replaces to a spec that failed
// before (unless plugs apply asks for them) and returns one line for each.
// Called with mu held.
func (d *daemon) holdFailedReplaces(plan *reconcile.Plan, reason string) []string {
	if len(d.failedReplaces) == 0 {
		return nil
	}
	if reason == reasonApply {
		clear(d.failedReplaces) // the user asks: every one is tried again
		return nil
	}
	var held []string
	plan.Changes = slices.DeleteFunc(plan.Changes, func(c reconcile.Change) bool {
		f, ok := d.failedReplaces[c.ID]
		if !ok || c.Action != reconcile.Replace || c.After == nil || specHash(c.After) != f.target {
			return false
		}
		held = append(held, fmt.Sprintf("%s: its new spec failed to start at %s (%s) and the previous one runs; not tried again until plugs.hcl changes it or plugs apply asks",
			c.ID, f.at.Format(time.RFC3339), f.err))
		return true
	})
	return held
}

// noteFailedReplaces records the replaces of res that were rolled back and
// forgets those of every instance whose change applied, or that is no
// longer desired. Called with mu held.
func (d *daemon) noteFailedReplaces(plan *reconcile.Plan, res *reconcile.ApplyResult, desired []instance.Spec) {
	if len(d.failedReplaces) == 0 && !slices.ContainsFunc(res.Outcomes, func(o reconcile.Outcome) bool { return o.RolledBack }) {
		return // the common case, at no cost per instance
	}
	after := make(map[instance.ID]*instance.Spec, len(plan.Changes))
	for i := range plan.Changes {
		after[plan.Changes[i].ID] = plan.Changes[i].After
	}
	for _, o := range res.Outcomes {
		switch {
		case o.Action == reconcile.Replace && o.RolledBack && after[o.ID] != nil:
			if d.failedReplaces == nil {
				d.failedReplaces = map[instance.ID]failedReplace{}
			}
			d.failedReplaces[o.ID] = failedReplace{target: specHash(after[o.ID]), err: d.redact(o.Err.Error()), at: time.Now()}
		case o.Err == nil:
			delete(d.failedReplaces, o.ID)
		}
	}
	for id := range d.failedReplaces {
		if !slices.ContainsFunc(desired, func(s instance.Spec) bool { return s.ID == id }) {
			delete(d.failedReplaces, id)
		}
	}
}

// heldError says which replaces a reconcile held; nil for none.
func heldError(held []string) error {
	if len(held) == 0 {
		return nil
	}
	return &api.Error{Kind: api.KindEnv, Message: fmt.Sprintf("%d replace(s) held: %s", len(held), strings.Join(held, "; "))}
}
