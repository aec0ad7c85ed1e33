package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/daemon"
)

func newPlanCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what apply would do, against the running daemon (or against nothing)",
		Long: `Show what apply would change: one line per instance with + (start),
-/+ (replace), ~ (update in place) or - (stop), the reason, and the changed
lines of its rendered config with secrets shown as (sensitive).

Against the running daemon when its socket answers (a -f other than the
daemon's file is planned against what the daemon runs); otherwise against
nothing, so that every instance is a start.

With -detailed-exitcode: 0 no changes, 2 changes, 1 error.`,
		// -detailed-exitcode, Terraform's spelling, reaches here as
		// --detailed-exitcode (see terraformStyleFlags).
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			vars, err := g.vars()
			if err != nil {
				return inputError(err)
			}
			var plan *api.PlanReport
			detailed := g.v.GetBool("detailed-exitcode")
			c, derr := api.Dial(g.stateDir())
			switch {
			case derr == nil:
				defer c.Close()
				req := api.PlanRequest{}
				if cmd.Flags().Changed("file") {
					req = api.PlanRequest{File: g.file(), Vars: vars}
				}
				ctx, cancel := g.apiContext(cmd.Context(), defaultApplyTimeout)
				defer cancel()
				plan, err = c.Plan(ctx, req)
			case errors.Is(derr, api.ErrPermission):
				return detailedExit(detailed, envError(derr))
			default:
				plan, err = daemon.PlanLocal(cmd.Context(), g.localOptions(vars))
			}
			if err != nil {
				return detailedExit(detailed, daemonError(g, err))
			}
			if err := renderPlan(g, plan); err != nil {
				return detailedExit(detailed, err)
			}
			if detailed && !plan.Empty() {
				return silent(2)
			}
			return nil
		},
	}
	cmd.Flags().Bool("detailed-exitcode", false, "exit 0 when there are no changes, 2 when there are, 1 on error")
	cmd.Flags().StringP("output", "o", "text", "output format: text or json")
	return cmd
}

// localOptions are the options of the commands that work without a daemon.
func (g *globals) localOptions(vars map[string]string) daemon.LocalOptions {
	o := daemon.LocalOptions{File: g.file(), StateDir: g.stateDir(), Vars: vars}
	if !g.quiet() {
		o.Progress = g.stderr
	}
	return o
}

// outputJSON reports -o json; an unknown format is an input error.
func outputJSON(g *globals) (bool, error) {
	switch f := g.v.GetString("output"); f {
	case "", "text":
		return false, nil
	case "json":
		return true, nil
	default:
		return false, inputError(errors.New("unknown output format " + f + ": want text or json"))
	}
}

// detailedExit makes every failure exit 1 under -detailed-exitcode, where 2
// means "changes pending" (as in Terraform): a CI job must never read an
// unreachable daemon or a failed fetch as a change.
func detailedExit(detailed bool, err error) error {
	var ee *exitError
	if detailed && errors.As(err, &ee) && ee.code == exitEnv {
		return &exitError{code: exitInput, err: ee.err}
	}
	return err
}
