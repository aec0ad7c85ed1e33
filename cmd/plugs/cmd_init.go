package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// initPlugin is the plugin plugs init scaffolds next to plugs.hcl, so that
// the first plugs run works without a network.
const (
	initPlugin    = "hello"
	initPluginDir = "plugins/hello"
)

func newInitCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented plugs.hcl to start from",
		Long: `Write a commented plugs.hcl (-f FILE) and, beside it, a small shell plugin in
plugins/hello that the file runs. It refuses to overwrite an existing file
unless --force is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file := g.file()
			force := g.v.GetBool("force")
			if _, err := os.Stat(file); err == nil && !force {
				return inputError(fmt.Errorf("%s already exists; use --force to overwrite it", file))
			} else if err != nil && !errors.Is(err, os.ErrNotExist) {
				return envError(fmt.Errorf("check %s: %w", file, err))
			}
			dir := filepath.Dir(file)
			content, err := render("templates/plugs.hcl.tmpl", scaffoldData{Name: initPlugin, PluginDir: initPluginDir})
			if err != nil {
				return envError(err)
			}
			pluginDir := filepath.Join(dir, filepath.FromSlash(initPluginDir))
			if _, err := os.Stat(filepath.Join(pluginDir, "plugin.hcl")); err != nil {
				if _, err := scaffoldPlugin(pluginDir, initPlugin, "shell"); err != nil {
					return envError(fmt.Errorf("scaffold %s: %w", pluginDir, err))
				}
				fmt.Fprintf(g.stdout, "Created the plugin %s\n", pluginDir)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return envError(err)
			}
			if err := writeFileAtomic(file, content, 0o644); err != nil {
				return envError(err)
			}
			fmt.Fprintf(g.stdout, "Wrote %s. Next: plugs validate -f %s, then plugs run -f %s\n", file, file, file)
			return nil
		},
	}
	cmd.Flags().Bool("force", false, "overwrite an existing file")
	return cmd
}
