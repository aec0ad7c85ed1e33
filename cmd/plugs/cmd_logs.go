package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/daemon"
	"github.com/plugs-dev/plugs/runner"
)

func newLogsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logs PLUG[/INSTANCE]",
		Short: "Print an instance's output (works without a daemon)",
		Long: `Print an instance's output.log (all of it, or the last -n lines), and with
-f keep printing what is appended, across rotations. -f means --follow here;
name the deployment file with --file.`,
		// -f means follow here, as in tail and docker logs: flags are parsed
		// in RunE after respelling it, since -f is the global --file.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := parseFlagsRespelled(cmd, g, args, map[string]string{"-f": "--follow"}, cobra.ExactArgs(1)); err != nil {
				return err
			}
			if help, _ := cmd.Flags().GetBool("help"); help {
				return cmd.Help()
			}
			args = cmd.Flags().Args()
			plug, instance, _ := strings.Cut(args[0], "/")
			n := g.v.GetInt("lines")
			follow := g.v.GetBool("follow")
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			if c, err := api.Dial(g.stateDir()); err == nil {
				defer c.Close()
				return daemonError(g, c.Logs(ctx, g.stdout, plug, instance, n, follow))
			}
			path, err := daemon.ResolveLogPath(g.stateDir(), plug, instance)
			if err != nil {
				return daemonError(g, err)
			}
			if _, err := os.Stat(filepath.Dir(path)); err != nil && !follow {
				return inputError(fmt.Errorf("no log for %s: %w", args[0], err))
			}
			if daemon.QuietLog(path, follow) {
				return nil
			}
			if err := runner.TailLog(ctx, g.stdout, path, n, follow); err != nil {
				return inputError(err)
			}
			return nil
		},
	}
	cmd.Flags().Bool("follow", false, "keep printing what is appended, across rotations")
	cmd.Flags().IntP("lines", "n", -1, "print only the last N lines")
	return cmd
}

// parseFlagsRespelled parses the flags of a command that disabled cobra's
// parsing, after respelling each argument found in respell (e.g.
// "-detailed-exitcode" → "--detailed-exitcode"), then checks the positional
// arguments with check.
func parseFlagsRespelled(cmd *cobra.Command, g *globals, args []string, respell map[string]string, check cobra.PositionalArgs) error {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(a, "=")
		if to, ok := respell[name]; ok {
			args[i] = to
			if hasVal {
				args[i] += "=" + val
			}
		}
	}
	cmd.DisableFlagParsing = false
	if err := cmd.ParseFlags(args); err != nil {
		return inputError(err)
	}
	if err := g.bind(cmd); err != nil {
		return err
	}
	if help, _ := cmd.Flags().GetBool("help"); help {
		return nil
	}
	if err := check(cmd, cmd.Flags().Args()); err != nil {
		return inputError(err)
	}
	return nil
}
