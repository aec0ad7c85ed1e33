package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/plugs-dev/plugs/api"
)

func newRestartCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "restart PLUG[/INSTANCE]",
		Short: "Restart an instance (or every instance of a plug) without changing the desired state",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			plug, instance, _ := strings.Cut(args[0], "/")
			c, err := dialDaemon(g)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := g.apiContext(cmd.Context(), defaultApplyTimeout)
			defer cancel()
			rep, err := c.Restart(ctx, api.RestartRequest{Plug: plug, Instance: instance})
			if err != nil {
				return daemonError(g, err)
			}
			for _, id := range rep.Restarted {
				fmt.Fprintf(g.stdout, "restarted %s\n", id)
			}
			return nil
		},
	}
}
