package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/daemon"
)

func newRunCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: converge, supervise, watch for changes, serve metrics and the local API",
		Long: `Run the plugs daemon in the foreground.

It converges the running instances to plugs.hcl and its lock, keeps them
alive, reloads on changes of either file (and on SIGHUP), serves metrics and
the local API (<state-dir>/plugs.sock), and stops every instance on SIGTERM.

  plugs run -f plugs.hcl
  plugs run --bundle site.plugs.tar.gz            # offline: never touches the network
  plugs run --repo https://git.example.org/ops/ward-3.git --ref main --path plugs.hcl --interval 1m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			vars, err := g.vars()
			if err != nil {
				return inputError(err)
			}
			v := g.v
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			// A fetch's bar on a terminal; elsewhere (systemd, a file) the
			// log's own "fetched" record per plug says it, and plain
			// progress lines would break its logfmt or JSON lines.
			var progress io.Writer
			if f, ok := g.stderr.(*os.File); ok && !g.quiet() && isatty.IsTerminal(f.Fd()) {
				progress = g.stderr
			}
			err = daemon.Run(ctx, daemon.Options{
				File:             g.file(),
				StateDir:         g.stateDir(),
				Vars:             vars,
				Bundle:           v.GetString("bundle"),
				Repo:             v.GetString("repo"),
				Ref:              v.GetString("ref"),
				Path:             v.GetString("path"),
				Interval:         v.GetDuration("interval"),
				MetricsAddr:      v.GetString("metrics-addr"),
				WebConfigFile:    v.GetString("web-config-file"),
				UIAddr:           v.GetString("ui-addr"),
				APIAddr:          v.GetString("api-addr"),
				APITokenFile:     v.GetString("api-token-file"),
				BrokerAddr:       v.GetString("broker-addr"),
				NoWatch:          !v.GetBool("watch"),
				Sandbox:          v.GetBool("sandbox"),
				AllowEmpty:       v.GetBool("allow-empty"),
				KeepBinaryPages:  v.GetBool("keep-binary-pages"),
				ReconcileTimeout: v.GetDuration("reconcile-timeout"),
				Logger:           newLogger(g.stderr, v.GetString("log-level")),
				Progress:         progress,
			})
			return daemonError(g, err)
		},
	}
	f := cmd.Flags()
	f.String("bundle", "", "run this bundle (from plugs bundle) offline")
	f.String("repo", "", "GitOps: the config repository URL to follow")
	f.String("ref", "", "GitOps: the ref to follow, anything a plug's version takes: a branch, tag, refs/heads/x, commit, constraint (default: the remote's default branch)")
	f.String("path", "plugs.hcl", "GitOps: the deployment file inside the repository")
	f.Duration("interval", 0, "poll interval: of the config repository (default 1m with --repo), else a periodic reconcile")
	f.String("metrics-addr", "127.0.0.1:9469", "Prometheus metrics listen address (port 0: any free port; off: none)")
	f.String("web-config-file", "", "Prometheus web config file for TLS and basic auth of the metrics and the dashboard")
	f.String("ui-addr", "127.0.0.1:9470", "dashboard listen address (port 0: any free port; empty: none); not loopback-only needs basic auth or client certificates in --web-config-file")
	f.String("api-addr", "", "the remote task API's listen address (plugs exec over HTTP; empty: none); not loopback-only needs --api-token-file or basic auth in --web-config-file")
	f.String("api-token-file", "", "a file of bearer tokens (one per line) the task API accepts")
	f.String("broker-addr", "127.0.0.1:1883", "listen address of the embedded MQTT broker, used when plugs.hcl has no broker block")
	f.Bool("watch", true, "reload when plugs.hcl or its lock changes")
	f.Bool("sandbox", true, "confine every plugin: Landlock from its permissions, a cgroup with its limits, an unprivileged user when plugs is root")
	f.Bool("allow-empty", false, "apply a plugs.hcl that declares no instance even while instances run (without it only plugs apply does)")
	f.Bool("keep-binary-pages", false, "keep the binary's pages mapped as start-up and loads left them (by default they are given back to the kernel 2 s after each load, as memory pressure would: README, Performance)")
	f.Duration("reconcile-timeout", daemon.DefaultReconcileTimeout, "the deadline of every reconcile, fetches and builds included")
	f.String("log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// daemonError maps an error to the CLI's exit code by its kind (api.Kind:
// input 1, environment 2). Diagnostics an error carries are rendered with
// their source lines, as plugs validate renders its own.
func daemonError(g *globals, err error) error {
	if err == nil {
		return nil
	}
	var ae *api.Error
	if errors.As(err, &ae) && len(ae.Diagnostics) > 0 {
		_ = api.WriteDiagnostics(g.stderr, ae.Diagnostics, 78)
		return silent(ae.Kind.ExitCode())
	}
	return &exitError{code: api.KindOf(err).ExitCode(), err: err}
}

// dialDaemon connects to the daemon of the state directory, or says why
// not: the socket refuses this user, or no daemon answers (and how to start
// one).
func dialDaemon(g *globals) (*api.Client, error) {
	c, err := api.Dial(g.stateDir())
	if errors.Is(err, api.ErrPermission) {
		return nil, envError(err)
	}
	if err != nil {
		return nil, envError(fmt.Errorf("no plugs daemon answers on %s; start it with: plugs run -f %s", api.SocketPath(g.stateDir()), g.file()))
	}
	return c, nil
}

// Default waits for a daemon's answer (--timeout overrides both): a
// stopped or wedged daemon accepts connections and never answers.
const (
	defaultTimeout      = 30 * time.Second
	defaultApplyTimeout = 2 * time.Minute // plan and apply may fetch and build
)

// apiContext bounds one call to the daemon by --timeout, else def.
func (g *globals) apiContext(ctx context.Context, def time.Duration) (context.Context, context.CancelFunc) {
	if t := g.v.GetDuration("timeout"); t > 0 {
		def = t
	}
	return context.WithTimeout(ctx, def)
}

// interruptible is ctx canceled by SIGINT or SIGTERM, for commands that stream.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}
