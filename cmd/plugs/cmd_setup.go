package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/daemon"
)

func newSetupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "setup PLUG",
		Short: "Run a plugin's configuration program with the plug's rendered config",
		Long: `Run the setup program of PLUG's plugin (the manifest's setup argv) from the
plugin's directory, attached to this terminal, with PLUGS_CONFIG naming the
rendered config of the plug's first instance (or --instance).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vars, err := g.vars()
			if err != nil {
				return inputError(err)
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			local := g.localOptions(vars)
			// The broker the daemon actually runs (its --broker-addr may
			// differ from the default), when one answers.
			if c, derr := api.Dial(g.stateDir()); derr == nil {
				sctx, cancel := g.apiContext(ctx, defaultTimeout)
				if st, serr := c.Status(sctx); serr == nil {
					local.EmbeddedBrokerURL = st.Daemon.BrokerURL
				}
				cancel()
				c.Close()
			}
			err = daemon.Setup(ctx, daemon.SetupOptions{
				LocalOptions: local,
				Plug:         args[0],
				Instance:     g.v.GetString("instance"),
				Stdin:        os.Stdin,
				Stdout:       g.stdout,
				Stderr:       g.stderr,
			})
			return daemonError(g, err)
		},
	}
	cmd.Flags().String("instance", "", "the instance whose config the program gets (default: the first)")
	return cmd
}
