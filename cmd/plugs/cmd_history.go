package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/plugs-dev/plugs/api"
)

func newHistoryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history PLUG",
		Short: "List a plug's revisions with their health verdicts and when",
		Long: `List the revisions of a plug with an update {} block, newest first: the
revision id (what plugs rollback --to takes), the plugin's revision and
version, the health verdict (rolling-out, healthy, failed, superseded),
when it was deployed and judged, and why a revision failed. RUNS marks the
revision the plug runs, LAST HEALTHY the one a failed rollout reverts to.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := outputJSON(g)
			if err != nil {
				return err
			}
			c, err := dialDaemon(g)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := g.apiContext(cmd.Context(), defaultTimeout)
			defer cancel()
			h, err := c.History(ctx, args[0])
			if err != nil {
				return daemonError(g, err)
			}
			if asJSON {
				return writeJSONOut(g.stdout, h)
			}
			writeHistoryText(g.stdout, h, time.Now())
			return nil
		},
	}
	cmd.Flags().StringP("output", "o", "text", "output format: text or json")
	return cmd
}

func newRollbackCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollback PLUG [--to REV]",
		Short: "Pin a plug's last healthy (or named) revision until plugs.hcl changes the plug",
		Long: `Put a plug back on its last healthy revision (or the one --to names: a
revision id from plugs history, or a prefix of it or of the plugin's
revision), at once, and keep it there until plugs.hcl changes the plug,
as an Argo CD rollback pauses auto-sync. plugs status and plugs plan show
the pin as an override.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := dialDaemon(g)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := g.apiContext(cmd.Context(), defaultApplyTimeout)
			defer cancel()
			rep, err := c.Rollback(ctx, api.RollbackRequest{Plug: args[0], To: g.v.GetString("to")})
			if err != nil {
				return daemonError(g, err)
			}
			writeRollbackText(g.stdout, rep)
			return nil
		},
	}
	cmd.Flags().String("to", "", "the revision to return to (default: the last healthy one)")
	return cmd
}
