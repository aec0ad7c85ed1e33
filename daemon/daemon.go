package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/metrics"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/runner"
	"github.com/plugs-dev/plugs/spec"
	"github.com/plugs-dev/plugs/ui"
)

// Daemon modes, as api.DaemonStatus.Mode shows them.
const (
	ModeFile   = "file"
	ModeBundle = "bundle"
	ModeGitOps = "gitops"
)

// Defaults of Options.
const (
	DefaultInterval = time.Minute
	// DefaultDebounce covers an editor's save (write, rename, chmod: a few
	// milliseconds) with room to spare, and is most of what a save costs
	// before the first instance restarts.
	DefaultDebounce = 100 * time.Millisecond
	// DefaultApplyParallelism is how many instances a reconcile starts or
	// stops at once (per depends_on level). A start or a stop mostly waits
	// (fork and exec, file syncs, a process's exit), so more than the cores:
	// BenchmarkConvergeTenPercent measures it against reconcile's default.
	DefaultApplyParallelism = 32
	// DefaultReconcileTimeout bounds a reconcile: fetching and building new
	// plugin versions included.
	DefaultReconcileTimeout = 10 * time.Minute
	// DefaultStableWait covers the pauses of a slow writer (scp, cat).
	DefaultStableWait = time.Second
)

// Options configure Run.
type Options struct {
	// File is plugs.hcl (ignored with Bundle or Repo); StateDir the state
	// directory (required); Vars the -var values.
	File     string
	StateDir string
	Vars     map[string]string

	// Bundle, when set, is unpacked into StateDir and run; no network is used.
	Bundle string

	// Repo, when set, is the GitOps config repository, a git source as
	// fetch takes it (fetch.ConfigRepo: mirrored in the store's cache, the
	// polled commit checked out in StateDir/config-repo). Ref (anything a
	// plug's version may be; "" for the default branch) is polled every
	// Interval (default DefaultInterval), Path (default plugs.hcl) is the
	// deployment inside it.
	Repo, Ref, Path string
	Interval        time.Duration

	// MetricsAddr is the Prometheus listen address (default
	// metrics.DefaultAddr; port 0 picks a free one, shown in status; "off"
	// disables it). WebConfigFile enables TLS and basic auth.
	MetricsAddr   string
	WebConfigFile string

	// UIAddr is the dashboard's listen address (package ui; port 0 picks a
	// free one; "" disables it). It takes TLS and basic auth from
	// WebConfigFile, and a non-loopback address needs authentication.
	UIAddr string

	// APIAddr is the remote task API's listen address (package task; ""
	// disables it); APITokenFile a file of bearer tokens it accepts. It
	// takes TLS and basic auth from WebConfigFile, and a non-loopback
	// address needs a token file or basic auth (daemon/tasks.go).
	APIAddr, APITokenFile string

	// Sandbox confines every instance (package sandbox): Landlock,
	// cgroups, an unprivileged user under a root daemon. plugs run turns
	// it on unless --sandbox=false.
	Sandbox bool

	// BrokerAddr is where the embedded MQTT broker listens when plugs.hcl has
	// no broker block (default mqtt.DefaultEmbeddedAddr; port 0 allowed).
	BrokerAddr string

	// NoWatch disables reloading on changes of plugs.hcl and its lock
	// (SIGHUP and plugs apply still reload).
	NoWatch  bool
	Debounce time.Duration // default DefaultDebounce

	// ApplyParallelism bounds the instances started or stopped at once;
	// default DefaultApplyParallelism.
	ApplyParallelism int

	// ReconcileTimeout bounds every reconcile, each of its steps obeying it
	// (default DefaultReconcileTimeout).
	ReconcileTimeout time.Duration
	// StableWait is how long plugs.hcl must stay unchanged before a file
	// event that would stop at least half of the running instances is
	// applied (default DefaultStableWait).
	StableWait time.Duration
	// AllowEmpty applies a deployment that declares no instance even while
	// instances run; without it only plugs apply does.
	AllowEmpty bool

	// KeepBinaryPages keeps the daemon's executable mapped as its start-up
	// and loads left it; by default every load's memory release (memory.go)
	// also gives back the executable's read-only pages (package exepages).
	KeepBinaryPages bool

	Logger   *slog.Logger
	Progress io.Writer // fetch progress; nil: none

	// Ready, when set, is called once the first converge is done.
	Ready func()
}

// daemon is one running plugs daemon; Run owns it.
type daemon struct {
	runCtx  context.Context // Run's: done once the daemon stops
	opts    Options
	log     *slog.Logger
	started time.Time
	mode    string
	file    string // the deployment file read at each reconcile
	// applyNow is signalled by plugs apply: a file event's reconcile that
	// waits for a stable plugs.hcl (waitStable) stops waiting, the user
	// having said the file is complete.
	applyNow chan struct{}
	// bundleErr: the bundle failed to verify at start, and the last
	// verified one runs (openSource); cleared once one verifies. Guarded
	// by mu.
	bundleErr error

	cleaned   <-chan struct{} // closed once CleanupStale is done (open)
	loader    *loader         // guarded by mu: replaced when a load is left blocked
	newLoader func() *loader  // a loader with a parser and store of its own
	// treeCache is shared by every loader's store and the runner's check
	// before each start: a start after the reconcile that verified its tree
	// does not hash the tree or read its marker again (fetch.Cache).
	treeCache *fetch.Cache
	runner    *runner.Runner
	metrics   *metrics.Metrics
	repo      *fetch.ConfigRepo
	broker    *brokerConn
	tasks     *tasks        // task instances (daemon/tasks.go)
	health    *daemonHealth // daemon/health.go
	ro        *rollouts     // health-gated rollouts (daemon/rollout.go)

	metricsAddr  string
	sandboxLines []string // what the sandbox enforces on this host (sandbox.go)

	// The dashboard (ui.go) and the instances stopped by hand (control.go).
	uiAddr    string
	uiSrv     atomic.Pointer[ui.Server]
	manual    manual
	manifests map[string]*spec.Manifest // of the deployment that runs; guarded by smu
	reg       *prometheus.Registry
	closers   []func() // what close undoes, in order of setup

	// mu serializes reconciles and plans (the loop, SIGHUP, the API).
	mu sync.Mutex
	// The fields below are guarded by mu. lastCommit is the config repo
	// commit last attempted; lastGood the last one that reconciled (kept
	// in <state>/config-repo.last-good).
	lastCommit plumbing.Hash
	lastGood   string
	pruned     bool // pruneInstanceDirs ran
	// failedReplaces are the replaces rolled back, not tried again
	// (daemon/failedreplace.go).
	failedReplaces map[instance.ID]failedReplace

	// smu guards what status shows.
	smu           sync.Mutex
	last          *api.ReconcileStatus
	progress      *api.Progress // the reconcile in progress
	lastLogged    string        // the last failure logged (the same one again is not)
	revision      string        // what runs
	applied       bool          // a configuration was applied by this run
	lastGoodShown string        // lastGood, for status
	blockedLoads  int           // loads left behind at their deadline, still running
	blockedSince  time.Time     // since when the first of them is
	plugins       []metrics.PluginInfo

	releaseState // the timer of releaseSoon (daemon/memory.go)
	flushState   // the flush of new trees after a reconcile (daemon/flush.go)
}

// Run runs the daemon until ctx ends: it converges, supervises, watches for
// changes and serves the local API and metrics. On return every instance
// has been stopped (in reverse dependency order) and the socket removed.
//
// It is three steps: open (what may fail before anything runs: options,
// the state-dir lock, the source, the stores), start (the broker, the
// runner, the listeners, the first converge) and serve (the triggers:
// file watch, SIGHUP, the loop's interval, until ctx ends). Whatever a
// step set up is undone by close, in reverse.
func Run(ctx context.Context, opts Options) error {
	d, err := open(ctx, opts)
	if err != nil {
		return err
	}
	defer d.close()
	if err := d.start(ctx); err != nil {
		return err
	}
	return d.serve(ctx)
}

// open validates opts, locks the state directory, starts the clean-up
// after a killed predecessor (the first start of an instance waits for
// it) and opens the deployment's source.
func open(ctx context.Context, opts Options) (_ *daemon, err error) {
	if opts.StateDir == "" {
		return nil, errors.New("no state directory")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Debounce = cmp.Or(opts.Debounce, DefaultDebounce)
	opts.ApplyParallelism = cmp.Or(opts.ApplyParallelism, DefaultApplyParallelism)
	opts.ReconcileTimeout = cmp.Or(opts.ReconcileTimeout, DefaultReconcileTimeout)
	opts.StableWait = cmp.Or(opts.StableWait, DefaultStableWait)
	opts.Path = cmp.Or(opts.Path, "plugs.hcl")
	opts.MetricsAddr = cmp.Or(opts.MetricsAddr, metrics.DefaultAddr)
	if opts.Repo != "" && opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.StateDir, err = filepath.Abs(opts.StateDir); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	d := &daemon{runCtx: ctx, opts: opts, log: opts.Logger, started: time.Now(), mode: ModeFile, applyNow: make(chan struct{}, 1)}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	lock, err := lockStateDir(opts.StateDir)
	if err != nil {
		return nil, err
	}
	d.onClose(lock.release)
	// What a killed predecessor left is stopped while the daemon starts
	// (the broker, the listeners, the first load); the runner's first
	// Start waits for it (runner.Options.StartAfter).
	cleaned := make(chan struct{})
	go func() {
		defer close(cleaned)
		if err := runner.CleanupStale(opts.StateDir, d.log); err != nil {
			d.log.Warn("clean up stale instances", "err", err)
		}
	}()
	d.cleaned = cleaned
	d.onClose(func() { <-cleaned })
	if err := d.openSource(ctx); err != nil {
		return nil, err
	}
	if d.ro, err = openRollouts(opts.StateDir, d.log); err != nil {
		return nil, &api.Error{Kind: api.KindEnv, Message: err.Error()}
	}
	d.reg = metrics.NewRegistry()
	d.metrics = metrics.New(d.reg, d) // scraped once served, in start
	d.treeCache = fetch.NewCache()
	d.onClose(func() { d.flushWG.Wait(); d.flushStore() }) // what the last loads installed is on disk
	d.newLoader = func() *loader {
		l := newLoader(opts.StateDir, fetch.Options{
			Logger: d.log, Progress: opts.Progress, Offline: d.mode == ModeBundle,
			OnFetched: d.metrics.FetchDone, Cache: d.treeCache,
		}, d.brokerInfo)
		l.deferSync = true
		return l
	}
	d.loader = d.newLoader()
	return d, nil
}

// start connects the broker, starts the runner, listens (metrics, the API
// socket), converges once and tells systemd and opts.Ready.
func (d *daemon) start(ctx context.Context) error {
	if err := d.startBroker(ctx); err != nil {
		return err
	}
	d.onClose(d.closeBroker)
	sb, closeSandbox, err := d.openSandbox() // sandbox.go
	if err != nil {
		return err
	}
	d.onClose(closeSandbox)
	d.startHealth(d.reg, func(ctx context.Context, id instance.ID, reason string) error { // daemon/health.go
		return d.runner.RestartUnhealthy(ctx, id, reason)
	})
	d.onClose(d.health.close)
	d.health.watchData(d.broker.pub)
	// Before every start (crash restarts included) the tree is checked
	// against what was fetched: a modified tree is a failed start.
	trees := fetch.Open(d.opts.StateDir, fetch.Options{Offline: true, Cache: d.treeCache})
	verify := func(s instance.Spec) error { return trees.VerifyDir(s.Dir) }
	r, err := runner.New(runner.Options{StateDir: d.opts.StateDir, Logger: d.log, Observer: d.observe, Sandbox: sb, Verify: verify,
		AwaitReady: d.health.awaitReadyProcess, // post_start waits for readiness
		StartAfter: d.cleaned})
	if err != nil {
		return err
	}
	d.runner = r
	d.onClose(func() {
		_ = sdNotify("STOPPING=1")
		stopCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if cerr := d.runner.Close(stopCtx); cerr != nil {
			d.log.Error("stop instances", "err", cerr)
		}
		d.log.Info("stopped")
	})
	d.onClose(d.ro.close) // before the runner's Close: no batch starts while it stops the instances
	if d.tasks, err = d.startTasks(ctx, d.reg); err != nil {
		return err
	}
	d.onClose(d.tasks.close) // before the runner's Close: scheduled runs end first
	d.metrics.WatchBroker(d.broker.pub)
	metricsDone, err := d.serveMetrics(ctx, d.reg)
	if err != nil {
		return err
	}
	d.onClose(metricsDone)
	apiSrv, err := serveAPI(api.SocketPath(d.opts.StateDir), d, d.log)
	if err != nil {
		return err
	}
	d.onClose(func() { apiSrv.shutdown(context.Background()) })
	uiDone, err := d.serveUI(ctx)
	if err != nil {
		return err
	}
	d.onClose(uiDone)

	// The first converge; an error is recorded and retried like any other.
	_, _ = d.reconcile(ctx, "start", true)
	if err := sdNotify("READY=1"); err != nil {
		d.log.Warn("notify systemd", "err", err)
	}
	if d.opts.Ready != nil {
		d.opts.Ready()
	}
	d.log.Info("plugs daemon ready", "socket", api.SocketPath(d.opts.StateDir), "metrics", d.metricsAddr, "ui", d.uiAddr, "mode", d.mode)
	return nil
}

// serve runs the reconcile loop and its triggers until ctx ends.
func (d *daemon) serve(ctx context.Context) error {
	loop := reconcile.NewLoop(reconcile.LoopOptions{
		Reconcile: func(ctx context.Context, reason string) error {
			_, err := d.reconcile(ctx, reason, reason != "interval")
			return err
		},
		Debounce: d.opts.Debounce,
		Interval: d.opts.Interval,
		// No Logger: finish logs each reconcile's outcome, once.
	})
	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { _ = loop.Run(loopCtx) })

	if d.mode == ModeFile && !d.opts.NoWatch {
		wait, err := watchFiles(loopCtx, []string{d.file, filepath.Join(filepath.Dir(d.file), LockFileName)},
			d.log, func() { loop.Trigger(reasonFileChanged) })
		if err != nil {
			return err
		}
		defer wait()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			d.log.Info("stopping")
			return nil
		case <-hup:
			d.log.Info("SIGHUP: reloading")
			loop.Trigger("SIGHUP")
		}
	}
}

// onClose adds f to what close undoes, in reverse order.
func (d *daemon) onClose(f func()) { d.closers = append(d.closers, f) }

// close undoes open and start in reverse: the API, metrics, the
// instances (stopped in reverse dependency order), the broker (stopped
// states, then offline), the lock.
func (d *daemon) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

// openSource sets the deployment file from the mode: a plain file, an
// unpacked bundle, or the GitOps checkout.
func (d *daemon) openSource(ctx context.Context) error {
	switch {
	case d.opts.Bundle != "" && d.opts.Repo != "":
		return &api.Error{Kind: api.KindInput, Message: "--bundle and --repo exclude each other"}
	case d.opts.Bundle != "":
		d.mode = ModeBundle
		file, err := fetch.Unbundle(ctx, d.opts.Bundle, d.opts.StateDir)
		if err != nil {
			// A bundle that does not verify changes nothing, at a start
			// too (after a crash or a reboot, with a bad bundle moved in):
			// the last one verified runs, as GitOps runs its last good
			// commit, and every reconcile says why until one verifies.
			last := fetch.UnbundledDeployment(d.opts.StateDir)
			if _, rerr := spec.ReadRegularFile(last); rerr != nil {
				return fmt.Errorf("unbundle %s: %w", d.opts.Bundle, err)
			}
			d.bundleErr = fmt.Errorf("unbundle %s: %w", d.opts.Bundle, err)
			d.log.Error("the bundle does not verify: running the last verified bundle", "bundle", d.opts.Bundle, "err", err)
			file = last
		}
		d.file = file
	case d.opts.Repo != "":
		d.mode = ModeGitOps
		store := fetch.Open(d.opts.StateDir, fetch.Options{Logger: d.log})
		repo, err := store.OpenConfigRepo(d.opts.Repo, d.opts.Ref, filepath.Join(d.opts.StateDir, "config-repo"))
		if err != nil {
			return &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("--repo: %v", err)}
		}
		d.repo = repo
		d.file = filepath.Join(repo.Dir(), filepath.FromSlash(d.opts.Path))
		d.lastGood = readLastGood(d.opts.StateDir)
		d.lastGoodShown = d.lastGood
	default:
		if d.opts.File == "" {
			return &api.Error{Kind: api.KindInput, Message: "no deployment file"}
		}
		abs, err := filepath.Abs(d.opts.File)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("deployment file: %v", err)}
		}
		d.file = abs
	}
	return nil
}

// serveMetrics listens (first, so that a taken port fails the start) and
// serves metrics until the returned func is called.
func (d *daemon) serveMetrics(ctx context.Context, reg *prometheus.Registry) (func(), error) {
	if d.opts.MetricsAddr == "off" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", d.opts.MetricsAddr)
	if err != nil {
		return nil, &api.Error{Kind: api.KindEnv, Message: fmt.Sprintf("metrics listen: %v (choose another with --metrics-addr)", err)}
	}
	d.metricsAddr = ln.Addr().String()
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := metrics.ServeListener(mctx, ln, d.opts.WebConfigFile, metrics.Handler(reg, d.ready), d.log); err != nil && mctx.Err() == nil {
			d.log.Error("metrics server", "err", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

// ready is /readyz: the last reconcile succeeded.
func (d *daemon) ready() error {
	d.smu.Lock()
	defer d.smu.Unlock()
	switch {
	case d.last == nil:
		return errors.New("not reconciled yet")
	case d.last.Error != "":
		return errors.New("last reconcile failed")
	}
	return nil
}

// Observe and Plugins make the daemon the metrics' Source.
func (d *daemon) Observe() []instance.Status { return d.observeAll() }

// Plugins lists the plugins of the deployment that runs.
func (d *daemon) Plugins() []metrics.PluginInfo {
	d.smu.Lock()
	defer d.smu.Unlock()
	return slices.Clone(d.plugins)
}
