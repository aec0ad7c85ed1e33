package main

import (
	"github.com/spf13/cobra"
)

func newApplyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Ask the running daemon to reconcile now, and print what it did",
		Long: `Ask the running daemon to reconcile now (in GitOps mode: to poll its
repository first) and print what it did. The daemon also reconciles by
itself when plugs.hcl or its lock change.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := outputJSON(g)
			if err != nil {
				return err
			}
			c, err := dialDaemon(g)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := g.apiContext(cmd.Context(), defaultApplyTimeout)
			defer cancel()
			rep, err := c.Apply(ctx)
			if err != nil {
				return daemonError(g, err)
			}
			if asJSON {
				if err := writeJSONOut(g.stdout, rep); err != nil {
					return err
				}
			} else {
				writeApplyText(g.stdout, rep)
			}
			if rep.Failed > 0 {
				return silent(exitEnv)
			}
			return nil
		},
	}
	cmd.Flags().StringP("output", "o", "text", "output format: text or json")
	return cmd
}
