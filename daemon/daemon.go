package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/health"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/redact"
	"github.com/plugs-dev/plugs/metrics"
	"github.com/plugs-dev/plugs/mqtt"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/runner"
	"github.com/plugs-dev/plugs/spec"
	"github.com/plugs-dev/plugs/ui"
)

// Daemon modes, as DaemonStatus.Mode shows them.
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

	// Repo, when set, is the GitOps config repository: cloned into
	// StateDir/config-repo, Ref (a branch, tag or "" for HEAD) is polled
	// every Interval (default DefaultInterval), Path (default plugs.hcl) is
	// the deployment inside it.
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

	Logger   *slog.Logger
	Progress io.Writer // fetch progress; nil: none

	// Sandbox confines every instance (package sandbox): Landlock,
	// cgroups, an unprivileged user under a root daemon. plugs run turns
	// it on unless --sandbox=false.
	Sandbox bool

	// Ready, when set, is called once the first converge is done.
	Ready func()
}

// daemon is one running plugs daemon; Run owns it.
type daemon struct {
	opts    Options
	log     *slog.Logger
	started time.Time
	mode    string
	file    string // the deployment file read at each reconcile

	store   *fetch.Store
	loader  *loader
	runner  *runner.Runner
	metrics *metrics.Metrics
	repo    *configRepo
	broker  *brokerConn
	tasks   *tasks // task instances (daemon/tasks.go)

	metricsAddr  string
	sandboxLines []string // what the sandbox enforces on this host (sandbox.go)

	// The dashboard (ui.go) and the instances stopped by hand (control.go).
	uiAddr    string
	uiSrv     atomic.Pointer[ui.Server]
	manual    manual
	manifests map[string]*spec.Manifest // of the deployment that runs; guarded by smu

	health *daemonHealth // daemon/health.go

	// mu serializes reconciles and plans (the loop, SIGHUP, the API).
	mu sync.Mutex
	// lastCommit is the config repo commit last attempted; guarded by mu.
	lastCommit plumbing.Hash

	// smu guards what status shows.
	smu      sync.Mutex
	last     *ReconcileStatus
	revision string
	plugins  []metrics.PluginInfo
}

// brokerConn is the MQTT side of the daemon: the publisher, and the
// embedded broker when plugs.hcl declares none.
type brokerConn struct {
	info     render.BrokerInfo
	config   *spec.Broker // the broker block it was made from; nil: embedded
	embedded *mqtt.Embedded
	pub      *mqtt.Publisher
}

// Run runs the daemon until ctx ends: it converges, supervises, watches for
// changes and serves the local API and metrics. On return every instance
// has been stopped (in reverse dependency order) and the socket removed.
func Run(ctx context.Context, opts Options) (err error) {
	if opts.StateDir == "" {
		return errors.New("no state directory")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Debounce = cmp.Or(opts.Debounce, DefaultDebounce)
	opts.ApplyParallelism = cmp.Or(opts.ApplyParallelism, DefaultApplyParallelism)
	opts.Path = cmp.Or(opts.Path, "plugs.hcl")
	opts.MetricsAddr = cmp.Or(opts.MetricsAddr, metrics.DefaultAddr)
	if opts.Repo != "" && opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	if opts.StateDir, err = filepath.Abs(opts.StateDir); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	d := &daemon{opts: opts, log: opts.Logger, started: time.Now(), mode: ModeFile}

	lock, err := lockStateDir(opts.StateDir)
	if err != nil {
		return err
	}
	defer lock.release()
	if err := runner.CleanupStale(opts.StateDir, d.log); err != nil {
		d.log.Warn("clean up stale instances", "err", err)
	}

	if err := d.openSource(ctx); err != nil {
		return err
	}
	reg := metrics.NewRegistry()
	d.metrics = metrics.New(reg, d) // scraped once served, below
	d.loader = newLoader(opts.StateDir, fetch.Options{
		Logger: d.log, Progress: opts.Progress, Offline: d.mode == ModeBundle,
		OnFetched: d.metrics.FetchDone,
	}, d.brokerInfo)
	d.store = d.loader.store

	if err := d.startBroker(ctx); err != nil {
		return err
	}
	defer d.closeBroker()

	sb, closeSandbox, err := d.openSandbox() // sandbox.go
	if err != nil {
		return err
	}
	defer closeSandbox()
	d.startHealth(reg, func(ctx context.Context, id instance.ID, reason string) error { // daemon/health.go
		return d.runner.RestartUnhealthy(ctx, id, reason)
	})
	defer d.health.close()
	d.health.watchData(d.broker.pub)
	d.runner, err = runner.New(runner.Options{StateDir: opts.StateDir, Logger: d.log, Observer: d.observe, Sandbox: sb})
	if err != nil {
		return err
	}
	defer func() {
		_ = sdNotify("STOPPING=1")
		stopCtx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if cerr := d.runner.Close(stopCtx); cerr != nil {
			d.log.Error("stop instances", "err", cerr)
		}
		d.log.Info("stopped")
	}()

	if d.tasks, err = d.startTasks(ctx, reg); err != nil {
		return err
	}
	defer d.tasks.close() // before the runner's Close: scheduled runs end first

	d.metrics.WatchBroker(d.broker.pub)
	metricsDone, err := d.serveMetrics(ctx, reg)
	if err != nil {
		return err
	}
	defer metricsDone()

	api, err := serveAPI(SocketPath(opts.StateDir), d, d.log)
	if err != nil {
		return err
	}
	defer api.shutdown(context.Background())

	uiDone, err := d.serveUI(ctx)
	if err != nil {
		return err
	}
	defer uiDone()

	// The first converge; an error is reported and retried like any other.
	if _, err := d.reconcile(ctx, "start", true); err != nil && ctx.Err() == nil {
		d.log.Error("reconcile failed", "reason", "start", "err", err)
	}
	if err := sdNotify("READY=1"); err != nil {
		d.log.Warn("notify systemd", "err", err)
	}
	if opts.Ready != nil {
		opts.Ready()
	}
	d.log.Info("plugs daemon ready", "socket", SocketPath(opts.StateDir), "metrics", d.metricsAddr, "ui", d.uiAddr, "mode", d.mode)

	loop := reconcile.NewLoop(reconcile.LoopOptions{
		Reconcile: func(ctx context.Context, reason string) error {
			_, err := d.reconcile(ctx, reason, reason != "interval")
			return err
		},
		Debounce: opts.Debounce,
		Interval: opts.Interval,
		Logger:   d.log,
	})
	loopCtx, stopLoop := context.WithCancel(ctx)
	defer stopLoop()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { _ = loop.Run(loopCtx) })

	if d.mode == ModeFile && !opts.NoWatch {
		wait, err := watchFiles(loopCtx, []string{d.file, filepath.Join(filepath.Dir(d.file), LockFileName)},
			d.log, func() { loop.Trigger("file changed") })
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

// openSource sets the deployment file from the mode: a plain file, an
// unpacked bundle, or the GitOps checkout.
func (d *daemon) openSource(ctx context.Context) error {
	switch {
	case d.opts.Bundle != "" && d.opts.Repo != "":
		return &Error{Kind: KindInput, Message: "--bundle and --repo exclude each other"}
	case d.opts.Bundle != "":
		d.mode = ModeBundle
		file, err := fetch.Unbundle(ctx, d.opts.Bundle, d.opts.StateDir)
		if err != nil {
			return fmt.Errorf("unbundle %s: %w", d.opts.Bundle, err)
		}
		d.file = file
	case d.opts.Repo != "":
		d.mode = ModeGitOps
		repo, err := openConfigRepo(ctx, d.opts.Repo, d.opts.Ref, filepath.Join(d.opts.StateDir, "config-repo"))
		if err != nil {
			return err
		}
		d.repo = repo
		d.file = filepath.Join(repo.dir, filepath.FromSlash(d.opts.Path))
	default:
		if d.opts.File == "" {
			return &Error{Kind: KindInput, Message: "no deployment file"}
		}
		abs, err := filepath.Abs(d.opts.File)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return &Error{Kind: KindInput, Message: fmt.Sprintf("deployment file: %v", err)}
		}
		d.file = abs
	}
	return nil
}

// startBroker connects the publisher: to the broker block of the deployment
// as it reads now, else to an embedded broker it starts. A later change of
// the broker block needs a daemon restart (it is logged).
func (d *daemon) startBroker(ctx context.Context) error {
	if d.mode == ModeGitOps {
		// The broker block is read from the ref's current commit.
		d.mu.Lock()
		_, _ = d.pollRepo(ctx)
		d.mu.Unlock()
	}
	var block *spec.Broker
	host := ""
	if dep, diags := spec.NewParser().LoadDeployment(d.file, d.opts.Vars); !diags.HasErrors() {
		block, host = dep.Broker, dep.Host
	}
	b := &brokerConn{config: block}
	cfg := mqtt.Config{Host: host, Logger: d.log.With("component", "mqtt")}
	if block == nil {
		auth, err := mqtt.LoadAuth(BrokerDir(d.opts.StateDir))
		if err != nil {
			return &Error{Kind: KindEnv, Message: err.Error()}
		}
		e, err := mqtt.StartEmbedded(d.opts.BrokerAddr, auth, d.log)
		if err != nil {
			return &Error{Kind: KindEnv, Message: fmt.Sprintf("%v\nhint: another MQTT broker may listen there; declare it in a broker block of plugs.hcl, or move the embedded one with --broker-addr (e.g. 127.0.0.1:0)", err)}
		}
		b.embedded = e
		host, port := splitHostPort(e.Addr())
		b.info = render.BrokerInfo{URL: e.URL(), Host: host, Port: port, InstanceCredentials: instanceCredentials(auth)}
		cfg.URL = e.URL()
		cfg.Username, cfg.Password = auth.Daemon()
	} else {
		b.info = brokerInfoOf(block)
		cfg.URL, cfg.Username, cfg.Password = block.URL, block.Username, block.Password
	}
	b.pub = mqtt.NewPublisher(cfg)
	// Not ctx: the publisher must outlive the stop signal, to send the
	// instances' final states and "offline" (closeBroker ends it).
	if err := b.pub.Start(context.WithoutCancel(ctx)); err != nil {
		if b.embedded != nil {
			_ = b.embedded.Close()
		}
		return fmt.Errorf("mqtt: %w", err)
	}
	d.broker = b
	return nil
}

// BrokerDir holds the embedded broker's credentials (mqtt.LoadAuth): the
// key every account's password derives from, and reader.password.
func BrokerDir(stateDir string) string { return filepath.Join(stateDir, "broker") }

// instanceCredentials hands each instance its own account of the embedded
// broker.
func instanceCredentials(a *mqtt.Auth) func(instance.ID) (string, string) {
	return func(id instance.ID) (string, string) { return a.Instance(id.Plug, id.Instance) }
}

func (d *daemon) closeBroker() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.broker.pub.Close(ctx); err != nil {
		d.log.Warn("mqtt close", "err", err)
	}
	if d.broker.embedded != nil {
		_ = d.broker.embedded.Close()
	}
}

// brokerInfo is what instances are told about the broker: always the one
// the daemon is connected to.
func (d *daemon) brokerInfo(dep *spec.Deployment) render.BrokerInfo {
	if !sameBroker(dep.Broker, d.broker.config) {
		d.log.Warn("the broker block changed; restart the daemon to use the new broker")
	}
	return d.broker.info
}

func sameBroker(a, b *spec.Broker) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.URL == b.URL && a.Username == b.Username && a.Password == b.Password
}

func brokerInfoOf(b *spec.Broker) render.BrokerInfo {
	info := render.BrokerInfo{URL: b.URL, Username: b.Username, Password: b.Password}
	if u, err := url.Parse(b.URL); err == nil {
		info.Host, info.Port = splitHostPort(u.Host)
	}
	return info
}

func splitHostPort(hostport string) (string, int) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

// serveMetrics listens (first, so that a taken port fails the start) and
// serves metrics until the returned func is called.
func (d *daemon) serveMetrics(ctx context.Context, reg *prometheus.Registry) (func(), error) {
	if d.opts.MetricsAddr == "off" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", d.opts.MetricsAddr)
	if err != nil {
		return nil, &Error{Kind: KindEnv, Message: fmt.Sprintf("metrics listen: %v (choose another with --metrics-addr)", err)}
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

// observe receives the runner's status changes and publishes them.
func (d *daemon) observe(st instance.Status) {
	d.health.observe(st)
	d.publishState(st)
}

// publishState publishes an instance's state message, with its health.
func (d *daemon) publishState(st instance.Status) {
	msg := mqtt.StateMessage{
		State:    string(st.State),
		PID:      st.PID,
		Version:  st.Spec.Version,
		Revision: st.Spec.Revision,
		Restarts: st.Restarts,
		Since:    st.Since,
		LastExit: lastExitWord(st.LastExit), // sandbox.go
	}
	if h, ok := d.health.status(st.ID); ok && st.State == instance.StateRunning {
		msg.Health, msg.Ready = h.Health, h.Ready
		if h.Health != health.Healthy {
			msg.HealthOutput = h.LastFailure
		}
	}
	d.broker.pub.PublishState(st.ID.Plug, st.ID.Instance, msg)
	d.notifyUI()
}

// Observe and Plugins make the daemon the metrics' Source.
func (d *daemon) Observe() []instance.Status { return d.observeAll() }

// Plugins lists the plugins of the deployment that runs.
func (d *daemon) Plugins() []metrics.PluginInfo {
	d.smu.Lock()
	defer d.smu.Unlock()
	return slices.Clone(d.plugins)
}

// pollRepo checks the config repository's ref and checks out a new commit.
// It returns the commit the checkout is at. Called with mu held.
func (d *daemon) pollRepo(ctx context.Context) (plumbing.Hash, error) {
	commit, err := d.repo.remoteCommit(ctx)
	if err != nil {
		return d.lastCommit, err
	}
	if d.repo.current != commit {
		if err := d.repo.checkout(ctx, commit); err != nil {
			return d.lastCommit, err
		}
		d.log.Info("config repo checked out", "commit", commit.String())
	}
	return commit, nil
}

// reconcile loads the configuration and converges the running instances to
// it. Any error before applying leaves every instance as it was. force
// reconciles even when a GitOps poll found the commit already applied.
func (d *daemon) reconcile(ctx context.Context, reason string, force bool) (*ApplyReport, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	start := time.Now()
	revision := ""
	if d.mode == ModeGitOps {
		commit, err := d.pollRepo(ctx)
		if err != nil {
			return nil, d.record(start, d.lastCommit.String(), &Error{Kind: KindEnv, Message: err.Error()})
		}
		revision = commit.String()
		if !force && commit == d.lastCommit && d.lastOK() {
			return &ApplyReport{}, nil
		}
		d.lastCommit = commit
	}
	ld, err := d.loader.load(ctx, d.file, d.opts.Vars)
	loaded := time.Now()
	if err != nil {
		if revision == "" {
			revision = contentHash(d.file, filepath.Join(filepath.Dir(d.file), LockFileName))
		}
		d.metrics.ConfigReloaded(false, time.Now())
		return nil, d.record(start, revision, err)
	}
	d.metrics.ConfigReloaded(true, time.Now())
	if revision == "" {
		revision = ld.contentHash
	}
	if ld.lockChanged && d.mode == ModeFile {
		if err := fetch.WriteLock(ld.lock.Filename, ld.lock); err != nil {
			d.log.Warn("write lock", "err", err)
		}
	}
	services, taskSpecs := splitTasks(ld.desired)
	d.metrics.SetDesired(len(services))

	d.health.configure(ld.health) // before any start: notify sockets are bound
	plan := reconcile.NewPlan(services, d.runner.Observe())
	planned := time.Now()
	res := reconcile.Apply(ctx, d.runner, plan, reconcile.ApplyOptions{Logger: d.log, Parallelism: d.opts.ApplyParallelism})
	report := applyReport(plan, res)
	d.tasks.update(taskSpecs)
	d.endOverrides()
	for _, c := range plan.Changes {
		if c.Action == reconcile.Delete {
			d.broker.pub.Forget(c.ID.Plug, c.ID.Instance)
		}
	}
	d.smu.Lock()
	d.revision = revision
	d.plugins = ld.plugins
	d.manifests = ld.manifests
	d.smu.Unlock()
	d.log.Info("applied", "reason", reason, "revision", revision,
		"started", report.Started, "replaced", report.Replaced, "stopped", report.Stopped, "failed", report.Failed,
		"load", loaded.Sub(start), "plan", planned.Sub(loaded), "apply", time.Since(planned))
	var applyErr error
	if err := res.Err(); err != nil {
		applyErr = &Error{Kind: KindEnv, Message: err.Error()}
	}
	return report, d.record(start, revision, applyErr)
}

// record reports the outcome of a reconcile on every channel DESIGN names:
// the log, plugs_reconcile_total, plugs status and the MQTT reconcile
// topic; it returns err.
func (d *daemon) record(start time.Time, revision string, err error) error {
	dur := time.Since(start)
	st := &ReconcileStatus{At: time.Now(), Duration: dur, Revision: revision}
	msg := mqtt.ReconcileMessage{Result: mqtt.ReconcileSuccess, Revision: revision, At: st.At}
	if err != nil {
		st.Error = d.redact(err.Error())
		msg.Result, msg.Error = mqtt.ReconcileError, st.Error
		d.log.Error("reconcile failed", "revision", revision, "err", st.Error)
	}
	d.metrics.ReconcileDone(dur, err)
	d.broker.pub.PublishReconcile(msg)
	d.smu.Lock()
	d.last = st
	d.smu.Unlock()
	d.notifyUI()
	if err != nil && st.Error != err.Error() {
		kind := KindEnv
		if e, ok := err.(*Error); ok {
			kind = e.Kind
		}
		return &Error{Kind: kind, Message: st.Error}
	}
	return err
}

// redact removes the broker password from a message bound for status, logs
// and MQTT. Secret params never reach one: diagnostics leave their values
// out, and sources are shown without credentials.
func (d *daemon) redact(s string) string {
	if c := d.broker.config; c != nil {
		return redact.Values(s, c.Password)
	}
	return s
}

func (d *daemon) lastOK() bool {
	d.smu.Lock()
	defer d.smu.Unlock()
	return d.last != nil && d.last.Error == ""
}
