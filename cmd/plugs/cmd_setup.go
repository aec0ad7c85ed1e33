package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/plugs-dev/plugs/daemon"
)

func newSetupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "setup PLUG",
		Short: "Run a plugin's configuration program with the plug's rendered config",
		Long: `Run the setup program of PLUG's plugin (the manifest's setup argv) from the
plugin's directory, with PLUGS_CONFIG naming the rendered config of the plug's
first instance (or --instance) and PLUGS_SETUP_DIR the plug's setup folder,
then mark the plug's setup done.

The program is confined as the plug's runs are (its user, Landlock rules,
rlimits, a cgroup of its own). When a daemon runs on the state directory,
the daemon runs it, as its own --sandbox says: this input is forwarded (a
pipe, not a terminal), its output shown here, and the plug's instances that
waited for the setup start. Otherwise it runs from this command, attached to
this terminal, confined unless --sandbox=false.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vars, err := g.vars()
			if err != nil {
				return inputError(err)
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			local := g.localOptions(vars)
			err = daemon.Setup(ctx, daemon.SetupOptions{
				LocalOptions: local,
				Plug:         args[0],
				Instance:     g.v.GetString("instance"),
				Stdin:        os.Stdin,
				Stdout:       g.stdout,
				Stderr:       g.stderr,
				NoSandbox:    !g.v.GetBool("sandbox"),
			})
			return daemonError(g, err)
		},
	}
	cmd.Flags().String("instance", "", "the instance whose config the program gets (default: the first)")
	cmd.Flags().Bool("sandbox", true, "without a daemon: confine the program as plugs run confines the plug (a running daemon follows its own --sandbox)")
	return cmd
}
