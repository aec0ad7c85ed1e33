package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	neturl "net/url"
	"path/filepath"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/mqtt"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/runner"
	"github.com/plugs-dev/plugs/sandbox"
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
	// NoSandbox runs the program unconfined when no daemon runs (plugs
	// setup --sandbox=false, as plugs run's); a running daemon confines it
	// as its own flag says.
	NoSandbox bool
}

// Setup runs a plug's configuration program (its manifest's setup argv)
// from the plugin's directory, with PLUGS_CONFIG naming the rendered
// config of the plug's first (or named) instance and PLUGS_SETUP_DIR its
// setup folder, and marks the plug's setup done when it exits 0. It is
// confined as the plug's runs are (same user, Landlock rules, rlimits, a
// cgroup of its own): by the daemon of the state directory when one
// answers (its output streamed here, this input forwarded; the daemon
// then starts the instances that waited for it), else in this process,
// which holds the state directory's lock meanwhile.
func Setup(ctx context.Context, o SetupOptions) error {
	c, err := api.Dial(o.StateDir)
	switch {
	case err == nil:
		defer c.Close()
		return c.Setup(ctx, api.SetupRequest{Plug: o.Plug, Instance: o.Instance}, o.Stdin, cmp.Or[io.Writer](o.Stdout, io.Discard))
	case errors.Is(err, api.ErrPermission):
		return err // a daemon runs that this user may not ask: it holds the state directory too
	}
	// The sandbox's rules name absolute paths: the trees' and folders'
	// paths follow from the state directory's.
	abs, err := filepath.Abs(o.StateDir)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	o.StateDir = abs
	lock, err := lockStateDir(o.StateDir)
	if err != nil {
		return &api.Error{Kind: api.KindEnv, Message: fmt.Sprintf("setup of %s: %v (is a daemon starting? run plugs setup again once it answers)", o.Plug, err)}
	}
	defer lock.release()
	var sb runner.Sandboxer
	if !o.NoSandbox {
		box, err := sandbox.New(sandbox.Options{StateDir: o.StateDir, Log: o.Logger})
		if err != nil {
			return fmt.Errorf("setup of %s: sandbox: %w", o.Plug, err)
		}
		defer box.Close()
		sb = box
	}
	r, err := runner.New(runner.Options{StateDir: o.StateDir, Logger: o.Logger, Sandbox: sb})
	if err != nil {
		return fmt.Errorf("setup of %s: %w", o.Plug, err)
	}
	defer r.Close(context.Background()) // no instance: nothing to stop
	return runSetup(ctx, o.loader(), o.File, o.Vars, r, o.Plug, o.Instance, o.Stdin, o.Stdout, o.Stderr)
}

// runSetup loads the deployment file with l, runs plug's setup program
// with r (Runner.RunOnce: confined when r has a sandbox) and marks its
// setup done. The program's config is the instance's config.json,
// rendered as a start renders it, in the instance directory the program
// may read.
func runSetup(ctx context.Context, l *loader, file string, vars map[string]string, r *runner.Runner, plug, inst string, stdin io.Reader, stdout, stderr io.Writer) error {
	ld, err := l.load(ctx, file, vars)
	if err != nil {
		return err
	}
	m := ld.manifests[plug]
	if ld.dep.Plug(plug) == nil || m == nil {
		return &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("no enabled plug %q in %s", plug, file)}
	}
	if len(m.Setup) == 0 {
		return &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("plug %s: its plugin has no setup program", plug)}
	}
	var spec *instance.Spec
	for i := range ld.desired {
		s := &ld.desired[i]
		if s.ID.Plug == plug && (inst == "" || s.ID.Instance == inst) {
			spec = s
			break
		}
	}
	if spec == nil {
		return &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("plug %s has no instance %q", plug, inst)}
	}
	res, err := r.RunOnce(ctx, runner.Once{
		Spec: *spec, Command: m.Setup,
		Stdin: stdin, Stdout: stdout, Stderr: stderr,
	})
	if err != nil {
		return fmt.Errorf("setup of %s: %w", plug, err)
	}
	if err := res.Err(); err != nil {
		return &api.Error{Kind: api.KindEnv, Message: fmt.Sprintf("setup of %s: %v", plug, err)}
	}
	if err := runner.MarkSetupDone(l.stateDir, plug); err != nil {
		return fmt.Errorf("setup of %s: %w", plug, err)
	}
	return nil
}
