package daemon

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/api/hcldiag"
	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/health"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/plugs-dev/plugs/metrics"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
	"github.com/plugs-dev/plugs/workspace"
)

// LockFileName is the lock's name, beside plugs.hcl.
const LockFileName = layout.LockFileName

// loader turns a plugs.hcl and its lock into desired instances: the part of
// a reconcile that may fail on bad input, and so runs before anything changes.
// It reads every deployment with one workspace.Reader, whose parser also
// reads the store's manifests.
type loader struct {
	reader   *workspace.Reader
	store    *fetch.Store // opened with reader (see newLoader)
	stateDir string
	// offline (bundles) only uses trees already in the store; otherwise a
	// missing or stale lock entry is resolved and fetched.
	offline bool
	// broker returns the broker instances are told about.
	broker func(d *spec.Deployment) render.BrokerInfo
	// deferSync leaves the trees a load installs for the daemon to flush
	// after its reconcile (daemon/flush.go); a CLI's load flushes them
	// before it returns.
	deferSync bool

	mu  sync.Mutex
	pre *preread // guarded by mu: what readAhead read, for the next load
	// runnable holds the trees whose program and compatibility passed
	// (workspace.CheckRunnable), by tree folder and command: a tree in the
	// store does not change (it is verified before each start), so each
	// is checked once, not at every load. Guarded by mu.
	runnable map[string]bool
}

// preread is a deployment read before its load: the daemon's start
// takes the broker block from it, and the first load starts from it when
// the files still hold the bytes it read (plugs.hcl of 1,000 plugs is
// parsed once at start, not twice: ~50 ms before the first fork).
type preread struct {
	file  string
	vars  map[string]string
	w     *workspace.Workspace
	diags hcl.Diagnostics
	hash  string // contentHash of plugs.hcl and the lock when they were read
}

// readAhead reads file (and the lock beside it) as load does and keeps
// the result for the next load of the same file, vars and bytes. It
// returns the deployment, nil when plugs.hcl has errors.
func (l *loader) readAhead(file string, vars map[string]string) *spec.Deployment {
	// Hashed before the read: open uses it only while the files hash the
	// same, so a save during or after the read is read again.
	before := contentHash(file, layout.LockFile(file))
	w, diags := l.reader.Open(workspace.Options{File: file, StateDir: l.stateDir, Vars: vars})
	l.mu.Lock()
	l.pre = &preread{file: file, vars: maps.Clone(vars), w: w, diags: diags, hash: before}
	l.mu.Unlock()
	if !diags.HasErrors() {
		return w.Deployment
	}
	// Errors may be the lock's alone: the deployment on its own, as the
	// broker block has always been read.
	if dep, diags := spec.NewParser().LoadDeployment(file, vars); !diags.HasErrors() {
		return dep
	}
	return nil
}

// open reads file for a load: what readAhead kept when the files still
// hold its bytes (once), else a new read.
func (l *loader) open(file string, vars map[string]string) (*workspace.Workspace, hcl.Diagnostics) {
	l.mu.Lock()
	p := l.pre
	l.pre = nil
	l.mu.Unlock()
	if p != nil && p.file == file && maps.Equal(p.vars, vars) && contentHash(file, p.w.LockFile) == p.hash {
		return p.w, p.diags
	}
	return l.reader.Open(workspace.Options{File: file, StateDir: l.stateDir, Vars: vars})
}

// newLoader opens the store of stateDir with a new workspace.Reader.
func newLoader(stateDir string, o fetch.Options, broker func(d *spec.Deployment) render.BrokerInfo) *loader {
	r := workspace.NewReader()
	return &loader{reader: r, store: r.Store(stateDir, o), stateDir: stateDir, offline: o.Offline, broker: broker}
}

// loaded is a deployment ready to be planned.
type loaded struct {
	dep     *spec.Deployment
	lock    *spec.Lock
	desired []instance.Spec
	plugins []metrics.PluginInfo
	// manifests are the manifests of the runnable plugs, by plug.
	manifests map[string]*spec.Manifest
	// lockChanged is set when fetching resolved entries the lock file lacks.
	lockChanged bool
	// contentHash identifies plugs.hcl and the lock's bytes.
	contentHash string
	// health is the health configuration of each desired instance (daemon/health.go).
	health map[instance.ID]health.Config
	// unrunnable are the plugs whose tree plugs validate refuses (its
	// program missing, an incompatible plugin): what of them runs keeps
	// its running spec, what does not is started and fails with the
	// runner's reason, the rest converges; unrunnableErr says why, with
	// the diagnostics, once the apply is done (nil: none).
	unrunnable    map[string]bool
	unrunnableErr error
}

// load reads file (and the lock beside it), brings the plugins in, and
// renders the desired instances. Its errors are *api.Error: api.KindInput
// for what a human must fix (with the diagnostics), api.KindEnv otherwise.
func (l *loader) load(ctx context.Context, file string, vars map[string]string) (*loaded, error) {
	return l.loadFor(ctx, file, vars, false)
}

// loadFor is load; with deferVerify, the trees' content is not verified
// (fetch.FetchOptions.DeferVerify): the caller verifies, with verify, the
// trees it is about to start processes in. A bundle's trees are verified
// by the load.
func (l *loader) loadFor(ctx context.Context, file string, vars map[string]string, deferVerify bool) (*loaded, error) {
	w, diags := l.open(file, vars)
	// What load returns is data: the syntax trees need not outlive it.
	defer l.reader.Release()
	if diags.HasErrors() {
		return nil, diagError(w, diags)
	}
	dep, lock := w.Deployment, w.LockOrEmpty()
	before := snapshotLock(lock)

	var trees map[string]*fetch.Tree
	var err error
	if l.offline {
		trees, err = l.store.Runnable(dep, lock)
	} else {
		trees, err = l.store.FetchRunnable(ctx, dep, lock, fetch.FetchOptions{DeferVerify: deferVerify, DeferSync: l.deferSync})
	}
	if err != nil {
		return nil, fetchError(w, err)
	}
	// What plugs validate refuses of a tree (a program that is not there
	// or not a file, an incompatible plugin) stops nothing for it: its
	// plug is not replaced (reconcile: holdUnrunnable), and said.
	var unrunnableErr error
	unrunnable, rdiags := l.checkRunnable(w, trees)
	if len(unrunnable) > 0 {
		unrunnableErr = diagError(w, rdiags)
	}
	// Params are merged and type-checked once, by the render.
	desired, diags := w.Desired(trees, l.broker(dep))
	if diags.HasErrors() {
		return nil, diagError(w, diags)
	}
	// The version the instances are rendered with (status and MQTT show
	// it): the tag, else the manifest's, for a local source.
	versions := make(map[string]string, len(trees))
	for _, s := range desired {
		if _, ok := versions[s.ID.Plug]; !ok {
			versions[s.ID.Plug] = s.Version
		}
	}
	var infos []metrics.PluginInfo
	for name, t := range trees {
		infos = append(infos, metrics.PluginInfo{Plug: name, Version: cmp.Or(versions[name], t.Version), Revision: t.Revision, Source: t.Source})
	}
	broker := l.broker(dep)
	healthCfgs := healthConfigs(l.stateDir, dep, w.Manifests, desired, broker.Password)
	return &loaded{
		health:      healthCfgs,
		dep:         dep,
		lock:        lock,
		desired:     desired,
		plugins:     infos,
		manifests:   w.Manifests,
		lockChanged: !maps.Equal(before, snapshotLock(lock)),
		contentHash: contentHash(file, w.LockFile),
		unrunnable:  unrunnable, unrunnableErr: unrunnableErr,
	}, nil
}

// verify checks, before a process runs in it, that the tree of each spec is
// as fetched (fetch.Store.VerifyDirs; each folder once), unless the load
// did (a bundle's): its error is the user's to fix when a tree was
// modified.
func (l *loader) verify(specs []instance.Spec) error {
	if l.offline {
		return nil // a bundle's load verified every tree (Store.Runnable)
	}
	seen := make(map[string]bool, len(specs))
	var dirs []string
	for _, s := range specs {
		if !seen[s.Dir] {
			seen[s.Dir] = true
			dirs = append(dirs, s.Dir)
		}
	}
	if err := l.store.VerifyDirs(dirs); err != nil {
		kind := api.KindEnv
		if fetch.IsInputError(err) {
			kind = api.KindInput
		}
		return &api.Error{Kind: kind, Message: err.Error()}
	}
	return nil
}

// checkRunnable is w.CheckRunnable for the trees not known to pass: the
// plugs whose tree it refuses, and the diagnostics of all it checked.
func (l *loader) checkRunnable(w *workspace.Workspace, trees map[string]*fetch.Tree) (map[string]bool, hcl.Diagnostics) {
	key := func(t *fetch.Tree) string { return t.Dir + "\x00" + strings.Join(t.Manifest.Command, "\x00") }
	l.mu.Lock()
	defer l.mu.Unlock()
	var refused map[string]bool
	var all hcl.Diagnostics
	w.CheckRunnable(trees, func(t *fetch.Tree) bool { return !l.runnable[key(t)] }, func(plug string, t *fetch.Tree, diags hcl.Diagnostics) {
		all = append(all, diags...)
		if diags.HasErrors() {
			if refused == nil {
				refused = map[string]bool{}
			}
			refused[plug] = true
			return
		}
		if l.runnable == nil {
			l.runnable = map[string]bool{}
		}
		l.runnable[key(t)] = true
	})
	return refused, all
}

// snapshotLock flattens a lock for comparison.
func snapshotLock(l *spec.Lock) map[string]spec.LockedPlug {
	out := make(map[string]spec.LockedPlug, len(l.Plugs))
	for name, e := range l.Plugs {
		c := *e
		c.DeclRange = hcl.Range{}
		out[name] = c
	}
	return out
}

// contentHash is a short id of the files' bytes: the config revision of a
// daemon that runs a plain file. Each is read as the parser reads it
// (spec.ReadRegularFile): a FIFO put in plugs.hcl's place is not opened,
// which would block the reconcile that asks (issue 17's review), and
// hashes as unreadable, unlike a missing file.
func contentHash(files ...string) string {
	h := sha256.New()
	for _, f := range files {
		b, err := spec.ReadRegularFile(f)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(h, "%s unreadable: %v\n", filepath.Base(f), err)
			continue
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// diagError keeps diagnostics as data (with their snippets, in the shape
// of plugs validate -o json) for the CLI to render; its message is their
// one-line form, for logs and MQTT. A file that could not be read is the
// environment's failure.
func diagError(w *workspace.Workspace, diags hcl.Diagnostics) error {
	d := hcldiag.Convert(w.Files(), workspace.ForView(diags))
	kind := api.KindInput
	if workspace.EnvFailure(diags) {
		kind = api.KindEnv
	}
	return &api.Error{Kind: kind, Message: api.OneLine(d), Diagnostics: d}
}

// fetchError classifies a fetch error: a wrong source or lock is the
// user's to fix; a network or disk failure is the environment's. A bad
// manifest's diagnostics are shown as diagnostics, with their snippet.
func fetchError(w *workspace.Workspace, err error) error {
	var e *api.Error
	if errors.As(err, &e) {
		return err
	}
	// Each plug's input error at its plug block, as plugs validate and
	// plugs fetch say it, when nothing else failed.
	if md, rest := workspace.FetchDiagnostics(w.Deployment, err); len(md) > 0 && len(rest) == 0 &&
		!slices.ContainsFunc(md, func(d *hcl.Diagnostic) bool { return d.Subject == nil }) {
		return diagError(w, md)
	}
	kind := api.KindEnv
	if fetch.IsInputError(err) {
		kind = api.KindInput
	}
	return &api.Error{Kind: kind, Message: err.Error()}
}
