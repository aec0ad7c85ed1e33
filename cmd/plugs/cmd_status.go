package main

import (
	"time"

	"github.com/spf13/cobra"
)

func newStatusCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the daemon and one row per instance: state, pid, uptime, restarts, version, revision",
		Args:  cobra.NoArgs,
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
			st, err := c.Status(cmd.Context())
			if err != nil {
				return daemonError(g, err)
			}
			if asJSON {
				return writeJSONOut(g.stdout, st)
			}
			writeStatusText(g.stdout, st, time.Now())
			return nil
		},
	}
	cmd.Flags().StringP("output", "o", "text", "output format: text or json")
	return cmd
}
