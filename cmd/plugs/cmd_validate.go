package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/plugs-dev/plugs/workspace"
	"github.com/spf13/cobra"
)

func newValidateCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check plugs.hcl, the lock and every manifest it can reach",
		Long: `Parse and check plugs.hcl (-f), plugs.lock.hcl beside it when there is one,
and every plugin manifest reachable without the network: inline plugin blocks,
local folder sources, and fetched trees in the state directory. Exit 0 when
valid, 1 with diagnostics when not, 2 when a file could not be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			output := g.v.GetString("output")
			if output != "" && output != "json" && output != "text" {
				return inputError(fmt.Errorf("unknown output format %q: want text or json", output))
			}
			vars, err := g.vars()
			if err != nil {
				return inputError(err)
			}
			file := g.file()
			if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
				return inputError(fmt.Errorf("no deployment file %s: write one with plugs init, or name it with -f FILE", file))
			} else if err != nil {
				return envError(fmt.Errorf("read %s: %w", file, err))
			}
			w, diags := workspace.Open(workspace.Options{File: file, StateDir: g.stateDir(), Vars: vars, PlugsVersion: version})
			diags = append(diags, w.CheckOffline()...)
			envFailure := workspace.EnvFailure(diags)
			diags = workspace.ForView(diags)
			if envFailure {
				writeDiags(g.stderr, w.Files(), diags)
				return silent(exitEnv)
			}
			if output == "json" {
				if err := writeValidateJSON(g.stdout, w.Files(), diags); err != nil {
					return envError(err)
				}
			} else {
				writeDiags(g.stderr, w.Files(), diags)
				switch {
				case diags.HasErrors():
				case len(diags) > 0:
					fmt.Fprintln(g.stdout, "Success! The configuration is valid, but there were some validation warnings as shown above.")
				default:
					fmt.Fprintln(g.stdout, "Success! The configuration is valid.")
				}
				if !diags.HasErrors() {
					writeValidateSandbox(g.stdout, w.Deployment, w.Manifests) // view_sandbox.go
				}
			}
			if diags.HasErrors() {
				return silent(exitInput)
			}
			return nil
		},
	}
	cmd.Flags().StringP("output", "o", "text", "output format: text or json")
	return cmd
}
