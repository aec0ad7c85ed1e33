package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// RolloutReader is a backend whose plugs with an update {} block roll out
// in health-gated batches (plugs status's rollouts, plugs history). Without
// it the pages show no rollouts.
type RolloutReader interface {
	// Rollouts lists the plugs of the running configuration that have a
	// rollout state (rolling out, healthy, failed, reverted, pinned).
	Rollouts() []Rollout
	// RolloutHistory is what plugs history PLUG prints: the plug's
	// revisions, newest first.
	RolloutHistory(plug string) ([]RolloutRevision, error)
}

// Rollout is one plug's rollout, as plugs status shows it, with the
// counts of the batch under way.
type Rollout struct {
	Plug string
	// State is "rolling-out", "healthy", "failed", "reverted" or "pinned".
	State string
	// Desired is the revision plugs.hcl asks for; LastHealthy the last one
	// judged healthy; Override the one that runs instead while a hold
	// applies (a revert, plugs rollback).
	Desired, LastHealthy, Override string
	// Batch (1-based) of Batches while rolling out.
	Batch, Batches int
	// OnTarget counts the instances on Desired, of Instances; while
	// rolling out, Healthy of them are healthy for min_healthy_time and
	// Unproven are not yet.
	OnTarget, Instances int
	Healthy, Unproven   int
	// AutoRevert is the update block's: a failure goes back to LastHealthy.
	AutoRevert bool
	Since      time.Time
	// Reason says why it failed, was reverted or pinned (secrets redacted
	// by the backend, as everywhere in status).
	Reason string
}

// RolloutRevision is one entry of a plug's history.
type RolloutRevision struct {
	ID, Revision, Version string
	Verdict, Reason       string
	Deployed, Judged      time.Time
	Runs, LastHealthy     bool
	Restorable            bool
}

// rolloutView is a Rollout as the pages show it.
type rolloutView struct {
	Rollout
	DOMID string // the plug's state panel
	Href  string
	// Held is the revision held off (failed, or not applied while pinned).
	Held string
	// Runs says which revision runs: one id, or two with how many on each.
	Runs    string
	Outcome string // what auto_revert did or would do
}

func rolloutHref(plug string) string { return "/rollouts/" + url.PathEscape(plug) }

func (s *Server) rolloutReader() (RolloutReader, bool) {
	rr, ok := s.b.(RolloutReader)
	return rr, ok
}

// rollouts reads the backend's rollouts, sorted by plug.
func (s *Server) rollouts() []rolloutView {
	rr, ok := s.rolloutReader()
	if !ok {
		return nil
	}
	rs := rr.Rollouts()
	out := make([]rolloutView, 0, len(rs))
	for _, r := range rs {
		out = append(out, viewRollout(r))
	}
	slices.SortFunc(out, func(a, b rolloutView) int { return strings.Compare(a.Plug, b.Plug) })
	return out
}

func viewRollout(r Rollout) rolloutView {
	v := rolloutView{Rollout: r, DOMID: domID("ro-", InstanceID{Plug: r.Plug}), Href: rolloutHref(r.Plug)}
	old := cmpStr(r.LastHealthy, "the revision before")
	switch r.State {
	case "healthy":
		v.Runs = r.Desired
	case "rolling-out", "failed":
		v.Runs = fmt.Sprintf("%d of %d on %s, the others on %s", r.OnTarget, r.Instances, r.Desired, old)
		if r.OnTarget == r.Instances {
			v.Runs = r.Desired
		}
	default: // reverted, pinned
		v.Runs = r.Override
	}
	if r.State == "failed" || r.State == "reverted" || r.State == "pinned" {
		v.Held = r.Desired
	}
	switch {
	case r.State == "reverted":
		v.Outcome = "auto_revert went back to " + r.Override
	case r.State == "pinned":
		v.Outcome = "pinned by plugs rollback"
	case r.State == "failed" && r.AutoRevert:
		v.Outcome = "auto_revert found no healthy revision to go back to: left as it is"
	case r.State == "failed":
		v.Outcome = "auto_revert is off: left as it is"
	case r.AutoRevert && r.LastHealthy != "":
		v.Outcome = "a failure reverts to " + r.LastHealthy
	case r.AutoRevert:
		v.Outcome = "a failure reverts to nothing yet: no healthy revision"
	default:
		v.Outcome = "a failure stops the rollout and reverts nothing (auto_revert off)"
	}
	return v
}

func cmpStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// rolloutsKey is what the rollout list shows that the event stream must
// send when it changes.
func rolloutsKey(rs []rolloutView) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%+v\n", r.Rollout)
	}
	return b.String()
}

// rolloutOf is plug's rollout, if it has one.
func rolloutOf(rs []rolloutView, plug string) *rolloutView {
	for i := range rs {
		if rs[i].Plug == plug {
			return &rs[i]
		}
	}
	return nil
}

// rolloutPage is a plug's page of its rollout: the state and the history.
type rolloutPage struct {
	Plug    string
	Rollout *rolloutView
	History rolloutHistory
}

// rolloutHistory is the history panel of a plug's page.
type rolloutHistory struct {
	DOMID   string
	Plug    string
	Entries []RolloutRevision
	Err     string
}

func (s *Server) historyOf(rr RolloutReader, plug string) rolloutHistory {
	h := rolloutHistory{DOMID: domID("rh-", InstanceID{Plug: plug}), Plug: plug}
	entries, err := rr.RolloutHistory(plug)
	if err != nil {
		h.Err = err.Error()
	}
	h.Entries = entries
	return h
}

func (s *Server) rolloutPage(w http.ResponseWriter, r *http.Request, v *view) (string, int) {
	rr, ok := s.rolloutReader()
	if !ok {
		return s.notFound(v, "The rollouts page")
	}
	plug := r.PathValue("plug")
	d := rolloutPage{Plug: plug, Rollout: rolloutOf(s.rollouts(), plug), History: s.historyOf(rr, plug)}
	if d.Rollout == nil && d.History.Err != "" {
		return s.notFound(v, "A rollout of plug "+plug)
	}
	v.Title, v.Nav = "Rollout of "+plug, "instances"
	v.Data = d
	return "rollout", http.StatusOK
}
