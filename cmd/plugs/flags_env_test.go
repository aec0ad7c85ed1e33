package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// setValue is a value for flag f other than its default, as a PLUGS_*
// variable or a config file would spell it.
func setValue(f *pflag.Flag) string {
	switch f.Value.Type() {
	case "bool":
		if f.DefValue == "true" {
			return "false"
		}
		return "true"
	case "int", "int64", "uint", "uint64":
		return "7"
	case "duration":
		return "3s"
	case "stringArray", "stringSlice":
		return "from-source"
	default:
		return "from-source"
	}
}

// flagValue is what a command sees of f: its value as a string, with
// slices unwrapped.
func flagValue(f *pflag.Flag) string {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return strings.Join(sv.GetSlice(), ",")
	}
	return f.Value.String()
}

func envName(flag string) string {
	return "PLUGS_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// TestEveryFlagFromEnvAndConfig runs every command with every flag
// (its own and inherited) set once through its PLUGS_* variable and once
// through the config file, and checks that both the flag (what a
// BoolVar-bound command reads) and viper (what the rest read) hold the
// value. PLUGS_FROZEN=true plugs fetch being ignored was this class.
func TestEveryFlagFromEnvAndConfig(t *testing.T) {
	type row struct {
		path []string
		flag string
	}
	var rows []row
	probe, _ := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.Runnable() && len(path) > 0 {
			seen := map[string]bool{}
			for _, fs := range []*pflag.FlagSet{c.LocalFlags(), c.InheritedFlags()} {
				fs.VisitAll(func(f *pflag.Flag) {
					if f.Name != "help" && f.Name != "config" && !seen[f.Name] {
						seen[f.Name] = true
						rows = append(rows, row{path, f.Name})
					}
				})
			}
		}
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(probe, nil)
	if len(rows) < 20 {
		t.Fatalf("only %d command flags found", len(rows))
	}

	for _, r := range rows {
		for _, via := range []string{"env", "config"} {
			t.Run(strings.Join(r.path, "_")+"/"+r.flag+"/"+via, func(t *testing.T) {
				root, g := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{})
				var sawFlag, sawViper, want string
				var ran bool
				cmd, _, err := root.Find(r.path)
				if err != nil {
					t.Fatal(err)
				}
				cmd.Args = cobra.ArbitraryArgs
				cmd.RunE = func(c *cobra.Command, args []string) error {
					if c.DisableFlagParsing { // plugs logs parses its own flags
						if err := parseFlagsRespelled(c, g, args, nil, cobra.ArbitraryArgs); err != nil {
							return err
						}
					}
					ran = true
					f := c.Flag(r.flag)
					sawFlag = flagValue(f)
					if _, ok := f.Value.(pflag.SliceValue); ok {
						sawViper = strings.Join(g.v.GetStringSlice(r.flag), ",")
					} else {
						sawViper = g.v.GetString(r.flag)
					}
					return nil
				}
				f := cmd.Flag(r.flag)
				want = setValue(f)
				args := append([]string{}, r.path...)
				switch via {
				case "env":
					t.Setenv(envName(r.flag), want)
				case "config":
					cfg := filepath.Join(t.TempDir(), "plugs.yaml")
					v := want
					if _, ok := f.Value.(pflag.SliceValue); ok {
						v = "[" + want + "]"
					}
					if err := os.WriteFile(cfg, []byte(r.flag+": "+v+"\n"), 0o644); err != nil {
						t.Fatal(err)
					}
					args = append(args, "--config", cfg)
				}
				root.SetArgs(args)
				if err := root.Execute(); err != nil {
					t.Fatalf("plugs %s: %v", strings.Join(args, " "), err)
				}
				if !ran {
					t.Fatal("command did not run")
				}
				if sawFlag != want || sawViper != want {
					t.Errorf("%s via %s = %q: flag holds %q, viper %q", r.flag, via, want, sawFlag, sawViper)
				}
			})
		}
	}
}
