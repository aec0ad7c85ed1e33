package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/plugs-dev/plugs/api"
)

// writeRolloutNotes prints, under the status table, each plug's rollout
// under way, failed, reverted or pinned (a healthy one says nothing).
func writeRolloutNotes(w io.Writer, rs []api.RolloutStatus, now time.Time) {
	first := true
	for _, r := range rs {
		var line string
		switch r.State {
		case api.RolloutHealthy:
			continue
		case api.RolloutProgressing:
			line = fmt.Sprintf("%s: rolling out %s, batch %d of %d, %d of %d instances on it, for %s", r.Plug, r.Revision, r.Batch, r.Batches, r.OnTarget, r.Instances, since(now, r.Since))
			if r.LastHealthy != "" {
				line += "; the last healthy revision is " + r.LastHealthy
			}
			if r.Reason != "" {
				line += " (" + r.Reason + ")"
			}
		case api.RolloutFailed:
			line = fmt.Sprintf("%s: ROLLOUT FAILED, %d of %d instances on %s, the others on the revision before: %s", r.Plug, r.OnTarget, r.Instances, r.Revision, r.Reason)
		default: // reverted, pinned
			line = fmt.Sprintf("%s: OVERRIDE: runs %s instead of plugs.hcl's %s: %s", r.Plug, r.Override, r.Revision, r.Reason)
		}
		if first {
			fmt.Fprintln(w)
			first = false
		}
		fmt.Fprintln(w, line)
	}
}

// writePlanRollouts prints how the plan's changes roll out, and the holds.
func writePlanRollouts(w io.Writer, rs []api.PlanRollout) {
	for _, r := range rs {
		if r.Held != "" {
			fmt.Fprintf(w, "Held: %s: %s\n", r.Plug, r.Held)
			continue
		}
		fail := "a failure stops the rollout and reverts nothing (auto_revert = false)"
		switch {
		case r.AutoRevert && r.RevertTo != "":
			fail = "a failure reverts to " + r.RevertTo
		case r.AutoRevert:
			fail = "a failure stops the rollout: no healthy revision to revert to yet"
		}
		fmt.Fprintf(w, "Rollout: %s replaces %d in batches of %d, each healthy for %s before the next, within %s; %s.\n",
			r.Plug, r.Replaces, r.MaxParallel, r.MinHealthyTime, r.HealthyDeadline, fail)
	}
}

// writeHistoryText prints a plug's revisions, newest first.
func writeHistoryText(w io.Writer, h *api.History, now time.Time) {
	if len(h.Entries) == 0 {
		fmt.Fprintf(w, "No revisions of %s yet.\n", h.Plug)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tPLUGIN REVISION\tVERSION\tVERDICT\tDEPLOYED\tJUDGED\tNOTE")
	for _, e := range h.Entries {
		judged := "-"
		if !e.Judged.IsZero() {
			judged = since(now, e.Judged) + " ago"
		}
		var notes []string
		if e.Runs {
			notes = append(notes, "RUNS")
		}
		if e.LastHealthy {
			notes = append(notes, "LAST HEALTHY")
		}
		if e.Reason != "" {
			notes = append(notes, e.Reason)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%s\t%s\n", e.ID, orDash(shortRev(e.Revision)), orDash(e.Version), e.Verdict,
			since(now, e.Deployed), judged, strings.Join(notes, "; "))
	}
	tw.Flush()
}

func writeRollbackText(w io.Writer, r *api.RollbackReport) {
	fmt.Fprintf(w, "%s: rolled back to %s (plugin revision %s), %d instances replaced; pinned until %s.\n",
		r.Plug, r.To, orDash(shortRev(r.Revision)), r.Replaced, r.Until)
}
