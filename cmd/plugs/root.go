package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Exit codes of every command.
const (
	exitOK    = 0
	exitInput = 1 // the input is wrong; diagnostics were printed
	exitEnv   = 2 // the environment failed: network, disk, daemon unreachable
)

// exitError carries an exit code out of cobra's RunE. A nil err means the
// message was already printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// inputError reports a wrong input (exit 1); envError a failed environment (exit 2).
func inputError(err error) error { return &exitError{code: exitInput, err: err} }
func envError(err error) error   { return &exitError{code: exitEnv, err: err} }

// silent returns an exit code whose reason was already printed.
func silent(code int) error { return &exitError{code: code} }

// globals are the options every command that reads a deployment shares.
type globals struct {
	v      *viper.Viper
	stdout io.Writer
	stderr io.Writer
}

// file is the plugs.hcl path (-f, PLUGS_FILE).
func (g *globals) file() string {
	f := g.v.GetString("file")
	if f == "" {
		f = "plugs.hcl"
	}
	return f
}

// stateDir is --state-dir, or .plugs beside plugs.hcl.
func (g *globals) stateDir() string {
	if d := g.v.GetString("state-dir"); d != "" {
		return d
	}
	return layout.DefaultStateDir(g.file())
}

// vars returns -var name=value pairs merged over PLUGS_VAR_name.
func (g *globals) vars() (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range os.Environ() {
		if name, ok := strings.CutPrefix(kv, "PLUGS_VAR_"); ok {
			k, val, _ := strings.Cut(name, "=")
			out[k] = val
		}
	}
	for _, kv := range g.v.GetStringSlice("var") {
		k, val, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid -var %q: want name=value", kv)
		}
		out[k] = val
	}
	return out, nil
}

func (g *globals) quiet() bool { return g.v.GetBool("quiet") }

func newRootCmd(stdout, stderr io.Writer) (*cobra.Command, *globals) {
	g := &globals{v: viper.New(), stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "plugs",
		Short:         "Declarative reconciler and supervisor for plugins",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.bind(cmd)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringP("file", "f", "plugs.hcl", "the deployment file")
	pf.String("state-dir", "", "state directory (default .plugs beside the deployment file)")
	pf.StringArray("var", nil, "set a variable: -var name=value (repeatable)")
	pf.BoolP("quiet", "q", false, "print no progress")
	pf.Duration("timeout", 0, "how long to wait for the daemon's answer (default 30s; 2m for plan, apply and restart)")
	pf.String("config", "", "an optional plugs config file (yaml, toml or json) with defaults for any flag")

	root.AddCommand(
		newVersionCmd(g),
		newInitCmd(g),
		newNewCmd(g),
		newValidateCmd(g),
		newLockCmd(g),
		newFetchCmd(g),
		newBuildCmd(g),
		newBundleCmd(g),
		newRunCmd(g),
		newPlanCmd(g),
		newApplyCmd(g),
		newStatusCmd(g),
		newLogsCmd(g),
		newRestartCmd(g),
		newHistoryCmd(g),  // cmd_history.go
		newRollbackCmd(g), // cmd_history.go
		newSetupCmd(g),
		newExecCmd(g), newRunsCmd(g), // cmd_exec.go
	)
	return root, g
}

// bind reads flags, PLUGS_* environment variables and the optional config
// file through viper, in that order of precedence.
func (g *globals) bind(cmd *cobra.Command) error {
	v := g.v
	v.SetEnvPrefix("PLUGS")
	v.SetEnvKeyReplacer(strings.NewReplacer("-", "_"))
	v.AutomaticEnv()
	var bindErr error
	bindAll := func(fs *pflag.FlagSet) {
		fs.VisitAll(func(f *pflag.Flag) {
			if err := v.BindPFlag(f.Name, f); err != nil && bindErr == nil {
				bindErr = err
			}
		})
	}
	bindAll(cmd.Flags())
	bindAll(cmd.InheritedFlags())
	if bindErr != nil {
		return bindErr
	}
	if cfg := v.GetString("config"); cfg != "" {
		v.SetConfigFile(cfg)
		if err := v.ReadInConfig(); err != nil {
			return inputError(fmt.Errorf("read config %s: %w", cfg, err))
		}
	}
	// A flag not given on the command line takes its PLUGS_* variable or
	// config file value, so that a command reading the flag itself (a
	// BoolVar) sees the same value as one reading viper.
	var setErr error
	fromViper := func(fs *pflag.FlagSet) {
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Changed || f.Name == "help" || f.Name == "config" || !v.IsSet(f.Name) || setErr != nil {
				return
			}
			var err error
			if sv, ok := f.Value.(pflag.SliceValue); ok {
				err = sv.Replace(v.GetStringSlice(f.Name))
			} else {
				err = f.Value.Set(v.GetString(f.Name))
			}
			if err != nil {
				setErr = inputError(fmt.Errorf("invalid value for %s (from PLUGS_%s or the config file): %w",
					f.Name, strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_")), err))
			}
		})
	}
	fromViper(cmd.Flags())
	fromViper(cmd.InheritedFlags())
	return setErr
}

// run executes the CLI and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root, _ := newRootCmd(stdout, stderr)
	root.SetArgs(terraformStyleFlags(root, args))
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "Error: %v\n", ee.err)
		}
		return ee.code
	}
	// cobra's own errors: unknown flags, wrong argument counts.
	fmt.Fprintf(stderr, "Error: %v\n", err)
	return exitInput
}

// terraformStyleFlags accepts long flags written with a single dash, as
// Terraform users write them (-var, -detailed-exitcode, -update): an
// argument "-name" or "-name=value" whose name is a long flag of some
// command becomes "--name". Shorthand clusters such as -qf are left alone
// unless they spell a long flag, and nothing after "--" is touched.
func terraformStyleFlags(root *cobra.Command, args []string) []string {
	long := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.PersistentFlags(), c.LocalFlags()} {
			fs.VisitAll(func(f *pflag.Flag) { long[f.Name] = true })
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		if a == "--" {
			break
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if len(name) > 1 && long[name] {
			out[i] = "-" + a
		}
	}
	return out
}
