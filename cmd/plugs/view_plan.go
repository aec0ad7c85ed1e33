package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/plugs-dev/plugs/api"
)

// renderPlan prints a plan as text or JSON (-o).
func renderPlan(g *globals, p *api.PlanReport) error {
	asJSON, err := outputJSON(g)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSONOut(g.stdout, p)
	}
	writePlanText(g.stdout, p)
	return nil
}

// writePlanText prints a plan the way Terraform does: one line per changed
// instance, a replaced instance's changed config lines, then the totals.
func writePlanText(w io.Writer, p *api.PlanReport) {
	if p.Empty() {
		fmt.Fprintln(w, "No changes. The running instances match the configuration.")
		writePlanRollouts(w, p.Rollouts) // view_rollout.go: the holds
		return
	}
	for _, c := range p.Changes {
		writeChange(w, c, "")
	}
	fmt.Fprintf(w, "\nPlan: %d to start, %d to replace, %d to stop.\n", p.Start, p.Replace, p.Stop)
	writePlanRollouts(w, p.Rollouts)
}

// writeChange prints one change line, with outcome appended when not empty.
func writeChange(w io.Writer, c api.Change, outcome string) {
	line := fmt.Sprintf("%3s %s/%s (%s)", actionSymbol(c.Action), c.Plug, c.Instance, c.Reason)
	if outcome != "" {
		line += ": " + outcome
	}
	fmt.Fprintln(w, line)
	for _, d := range c.Diff {
		fmt.Fprintf(w, "      %s\n", d)
	}
}

func actionSymbol(action string) string {
	switch action {
	case api.ActionCreate:
		return "+"
	case api.ActionReplace:
		return "-/+"
	case api.ActionUpdate:
		return "~"
	case api.ActionDelete:
		return "-"
	}
	return "?"
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
