package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/plugs-dev/plugs/spec"
	"github.com/spf13/cobra"
)

func newNewCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Scaffold a plugin: manifest, entry point, a test",
		Long: `Scaffold a plugin in DIR/NAME (default ./NAME): a plugin.hcl manifest, an
entry point that reads $PLUGS_CONFIG and publishes on its data topic, and a
test. --lang picks go (with paho.mqtt.golang), python or shell (both with
mosquitto_pub).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !spec.ValidName(name) {
				return inputError(fmt.Errorf("invalid plugin name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", name))
			}
			lang := g.v.GetString("lang")
			dir := filepath.Join(g.v.GetString("dir"), name)
			if !slices.Contains(scaffoldLangs, lang) {
				return inputError(fmt.Errorf("unknown language %q: want one of %s", lang, strings.Join(scaffoldLangs, ", ")))
			}
			if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
				return inputError(fmt.Errorf("folder %s already exists and is not empty: choose another name or --dir", dir))
			}
			files, err := scaffoldPlugin(dir, name, lang)
			if err != nil {
				return envError(err)
			}
			source := filepath.ToSlash(dir)
			if !filepath.IsAbs(dir) {
				source = "./" + source
			}
			fmt.Fprintf(g.stdout, "Created the %s plugin %q in %s:\n", lang, name, dir)
			for _, f := range files {
				fmt.Fprintf(g.stdout, "  %s\n", f)
			}
			fmt.Fprintf(g.stdout, "Use it from plugs.hcl with:\n\nplug %q {\n  source = %q\n}\n", name, source)
			return nil
		},
	}
	cmd.Flags().String("lang", "shell", "language: go, python or shell")
	cmd.Flags().String("dir", ".", "folder to create the plugin's folder in")
	return cmd
}
