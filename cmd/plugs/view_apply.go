package main

import (
	"fmt"
	"io"

	"github.com/plugs-dev/plugs/api"
)

// writeApplyText prints what an apply did: each change with its outcome,
// then the totals.
func writeApplyText(w io.Writer, r *api.ApplyReport) {
	if r.Plan.Empty() {
		fmt.Fprintln(w, "No changes. The running instances match the configuration.")
	}
	for _, c := range r.Plan.Changes {
		outcome := pastTense(c.Action)
		switch {
		case c.Error != "":
			outcome = "failed: " + c.Error
		case c.Warning != "":
			outcome += " (" + c.Warning + ")"
		}
		writeChange(w, c, outcome)
	}
	if !r.Plan.Empty() {
		fmt.Fprintln(w)
	}
	writePlanRollouts(w, r.Plan.Rollouts) // view_rollout.go: replaces left to a rollout, holds
	if r.Failed > 0 {
		fmt.Fprintf(w, "Apply failed for %d instance(s)! Resources: %d started, %d replaced, %d stopped.\n", r.Failed, r.Started, r.Replaced, r.Stopped)
		return
	}
	fmt.Fprintf(w, "Apply complete! Resources: %d started, %d replaced, %d stopped.\n", r.Started, r.Replaced, r.Stopped)
}

func pastTense(action string) string {
	switch action {
	case api.ActionCreate:
		return "started"
	case api.ActionReplace:
		return "replaced"
	case api.ActionUpdate:
		return "updated"
	case api.ActionDelete:
		return "stopped"
	}
	return action
}
