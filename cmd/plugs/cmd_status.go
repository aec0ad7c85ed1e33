package main

import (
	"time"

	"github.com/spf13/cobra"
)

func newStatusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status [PLUG]",
		Short: "Show the daemon and one row per instance: state, pid, uptime, restarts, version, revision",
		Long: `Show the daemon and one row per instance: state, pid, uptime, restarts,
version, revision and last exit. With PLUG, only that plug's instances, each
followed by what its sandbox lets it do.`,
		Args: cobra.MaximumNArgs(1),
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
			st, err := c.Status(ctx)
			if err != nil {
				return daemonError(g, err)
			}
			if len(args) == 1 {
				if err := onlyPlug(st, args[0]); err != nil {
					return inputError(err)
				}
			}
			if asJSON {
				return writeJSONOut(g.stdout, st)
			}
			writeStatusText(g.stdout, st, time.Now())
			if len(args) == 1 {
				writePluginLines(g.stdout, st)
				writeSandboxLines(g.stdout, st)
			}
			return nil
		},
	}
	cmd.Flags().StringP("output", "o", "text", "output format: text or json")
	return cmd
}
