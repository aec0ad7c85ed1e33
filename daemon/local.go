package daemon

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	neturl "net/url"
	"os"
	"path/filepath"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/plugs-dev/plugs/mqtt"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/runner"
	"github.com/plugs-dev/plugs/spec"
)

// LocalOptions are what the commands that work without a daemon read.
type LocalOptions struct {
	File     string
	StateDir string
	Vars     map[string]string
	Logger   *slog.Logger
	Progress io.Writer

	// EmbeddedBrokerURL is the URL of the embedded broker the running
	// daemon serves (its status's broker_url); "" means the default
	// address. Used when plugs.hcl has no broker block. (Daemon helper.)
	EmbeddedBrokerURL string
}

func (o LocalOptions) loader() *loader {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return newLoader(o.StateDir, fetch.Options{Logger: logger, Progress: o.Progress}, o.brokerInfo)
}

// brokerInfo is the broker a daemon uses: the deployment's broker block,
// else the embedded broker at the address the running daemon reports (or
// the default one), with each instance's account when this user can read
// the daemon's broker key.
func (o LocalOptions) brokerInfo(dep *spec.Deployment) render.BrokerInfo {
	if dep.Broker != nil {
		return brokerInfoOf(dep.Broker)
	}
	url := cmp.Or(o.EmbeddedBrokerURL, "tcp://"+mqtt.DefaultEmbeddedAddr)
	host, port := mqtt.DefaultEmbeddedAddr, 0
	if u, err := neturl.Parse(url); err == nil {
		host = u.Host
	}
	host, port = splitHostPort(host)
	info := render.BrokerInfo{URL: url, Host: host, Port: port}
	if a, err := mqtt.ReadAuth(BrokerDir(o.StateDir)); err == nil {
		info.InstanceCredentials = instanceCredentials(a)
	}
	return info
}

// PlanLocal plans the deployment against nothing running: every instance is
// a create. It is what plugs plan shows when no daemon answers. Plugins
// missing from the state directory are fetched (the lock file is not written).
func PlanLocal(ctx context.Context, o LocalOptions) (*api.PlanReport, error) {
	ld, err := o.loader().load(ctx, o.File, o.Vars)
	if err != nil {
		return nil, err
	}
	services, _ := splitTasks(ld.desired)
	p := planReport(reconcile.NewPlan(services, nil))
	p.Revision = ld.contentHash
	return p, nil
}

// SetupOptions configure Setup.
type SetupOptions struct {
	LocalOptions
	Plug     string
	Instance string // "" means the plug's first instance
	Stdin    io.Reader
	Stdout   io.Writer
	Stderr   io.Writer
}

// Setup runs a plug's configuration program (its manifest's setup argv)
// from the plugin's directory, attached to the given terminal streams, with
// PLUGS_CONFIG naming the rendered config of the plug's first (or named)
// instance. The config, secrets included, is written with mode 0600 and
// removed afterwards.
func Setup(ctx context.Context, o SetupOptions) error {
	ld, err := o.loader().load(ctx, o.File, o.Vars)
	if err != nil {
		return err
	}
	m := ld.manifests[o.Plug]
	if ld.dep.Plug(o.Plug) == nil || m == nil {
		return &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("no enabled plug %q in %s", o.Plug, o.File)}
	}
	if len(m.Setup) == 0 {
		return &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("plug %s: its plugin has no setup program", o.Plug)}
	}
	var inst *instance.Spec
	for i := range ld.desired {
		s := &ld.desired[i]
		if s.ID.Plug == o.Plug && (o.Instance == "" || s.ID.Instance == o.Instance) {
			inst = s
			break
		}
	}
	if inst == nil {
		return &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("plug %s has no instance %q", o.Plug, o.Instance)}
	}
	dir, err := filepath.Abs(layout.Setup(o.StateDir))
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	cfg, err := os.CreateTemp(dir, inst.ID.Plug+"-"+inst.ID.Instance+"-*.json")
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	defer os.Remove(cfg.Name())
	_, err = cfg.Write(inst.Config)
	if cerr := cfg.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("setup: write config: %w", err)
	}

	// runner.RunOnce: the instance's clean environment, the tree's command
	// word, PLUGS_SETUP_DIR (what the program saves goes there, never into
	// the read-only plugin tree); a terminal stays the program's.
	setupDir := runner.SetupDir(o.StateDir, inst.ID.Plug)
	if err := os.MkdirAll(setupDir, 0o700); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	res, err := runner.RunOnce(ctx, runner.Once{
		Spec: *inst, Command: m.Setup, ConfigPath: cfg.Name(), SetupDir: setupDir,
		Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr,
	})
	if err != nil {
		return fmt.Errorf("setup of %s: %w", o.Plug, err)
	}
	if err := res.Err(); err != nil {
		return &api.Error{Kind: api.KindEnv, Message: fmt.Sprintf("setup of %s: %v", o.Plug, err)}
	}
	if err := runner.MarkSetupDone(o.StateDir, inst.ID.Plug); err != nil {
		return fmt.Errorf("setup of %s: %w", o.Plug, err)
	}
	// A running daemon holds the plug's instances in needs-setup: start them.
	if c, err := api.Dial(o.StateDir); err == nil {
		defer c.Close()
		_, _ = c.Restart(ctx, api.RestartRequest{Plug: inst.ID.Plug})
	}
	return nil
}
