package workspace

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"

	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
)

// Options name a deployment.
type Options struct {
	File     string            // plugs.hcl; "" means ./plugs.hcl
	StateDir string            // "" means .plugs beside File
	Vars     map[string]string // -var and PLUGS_VAR_ values, as strings
	// PlugsVersion is this plugs' version, for manifests' compatibility
	// checks (spec.Parser.PlugsVersion); "" when unknown.
	PlugsVersion string
}

// Workspace is a decoded deployment and its lock.
type Workspace struct {
	File     string
	LockFile string
	StateDir string

	Deployment *spec.Deployment // nil when plugs.hcl could not be decoded at all
	Lock       *spec.Lock       // nil when there is no lock file
	LockBytes  []byte           // the lock file's bytes as read, nil when missing

	// Manifests are the manifests found so far, by plug.
	Manifests map[string]*spec.Manifest

	r      *Reader
	parser *spec.Parser // the Reader's parser when w was opened
}

// Reader reads deployments and the manifests of their plugin trees with
// one spec.Parser per deployment opened: the store's manifests of a load
// land in the same parser as its plugs.hcl and lock, so that every
// diagnostic renders with its snippet. A daemon keeps one Reader for its
// life (each Open starts a new parser, so memory stays bounded); a command
// opens one. It is safe for concurrent use (fetch reads manifests from
// several goroutines).
type Reader struct {
	mu     sync.Mutex
	parser *spec.Parser // of the last Open
	// locks decodes the lock of each Open from the entries of the last one
	// that did not change (spec.LockCache): a daemon's reconcile reads the
	// lock it wrote itself at the last one.
	locks spec.LockCache
}

// NewReader returns a Reader.
func NewReader() *Reader { return &Reader{parser: spec.NewParser()} }

// Release lets go of what the last Open read: its files' bytes and syntax
// trees, which its parser keeps for the diagnostics' snippets. A daemon
// calls it once a load's diagnostics are rendered (at N = 1,000 plugs they
// are ~5 MB of live heap until the next Open). A Workspace of that Open
// still renders its own diagnostics: it holds its parser itself.
func (r *Reader) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.parser = spec.NewParser()
}

// LoadManifest reads a tree's manifest (fetch.Options.LoadManifest). Its
// error is the hcl.Diagnostics themselves, not flattened: see
// ManifestDiagnostics.
func (r *Reader) LoadManifest(dir string) (*spec.Manifest, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, diags := r.parser.LoadManifest(dir)
	if diags.HasErrors() {
		return nil, diags
	}
	return m, nil
}

// Store opens the plugin store of stateDir, reading manifests with r.
func (r *Reader) Store(stateDir string, o fetch.Options) *fetch.Store {
	o.LoadManifest = r.LoadManifest
	return fetch.Open(stateDir, o)
}

// Open reads a deployment with a Reader of its own (see Reader.Open).
func Open(o Options) (*Workspace, hcl.Diagnostics) { return NewReader().Open(o) }

// Open reads plugs.hcl and, when it exists, the lock beside it. The
// workspace is returned with the diagnostics of both, possibly partial
// (Deployment is nil when plugs.hcl could not be decoded at all).
func (r *Reader) Open(o Options) (*Workspace, hcl.Diagnostics) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.parser = spec.NewParser()
	r.parser.PlugsVersion, r.parser.Python3Version = o.PlugsVersion, fetch.Python3Version
	if o.File == "" {
		o.File = layout.DeploymentFileName
	}
	if o.StateDir == "" {
		o.StateDir = layout.DefaultStateDir(o.File)
	}
	w := &Workspace{File: o.File, LockFile: layout.LockFile(o.File), StateDir: o.StateDir,
		Manifests: map[string]*spec.Manifest{}, r: r, parser: r.parser}
	d, diags := r.parser.LoadDeployment(o.File, o.Vars)
	w.Deployment = d
	if d == nil {
		return w, diags
	}
	if _, err := os.Stat(w.LockFile); errors.Is(err, fs.ErrNotExist) {
		return w, diags
	}
	// Any other read error is LoadLock's to report (an EnvFailure).
	l, b, ldiags := r.parser.LoadLockCached(w.LockFile, &r.locks)
	diags = append(diags, ldiags...)
	if l != nil && !ldiags.HasErrors() {
		w.Lock, w.LockBytes = l, b
	}
	return w, diags
}

// Files returns every file read so far, for rendering diagnostics with
// their snippets (secret lines blank, see spec.Parser.Files).
func (w *Workspace) Files() map[string]*hcl.File {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.parser.Files()
}

// LockOrEmpty returns the lock to update in place, creating an empty one
// when there is no lock file.
func (w *Workspace) LockOrEmpty() *spec.Lock {
	if w.Lock == nil {
		w.Lock = &spec.Lock{Filename: w.LockFile, Plugs: map[string]*spec.LockedPlug{}}
	}
	return w.Lock
}

// CheckOffline compares the lock with plugs.hcl (stale entries are
// warnings), finds the manifest of every plug that can be reached without
// the network (see spec.Parser.LoadManifests) and checks every instance's
// params against them: what plugs validate reports beyond Open's.
func (w *Workspace) CheckOffline() hcl.Diagnostics {
	if w.Deployment == nil {
		return nil
	}
	var diags hcl.Diagnostics
	if w.Lock != nil {
		diags = spec.CheckLock(w.Deployment, w.Lock)
	}
	w.r.mu.Lock()
	m, mdiags := w.parser.LoadManifests(w.Deployment, w.Lock, w.StateDir)
	w.r.mu.Unlock()
	diags = append(diags, mdiags...)
	for name, man := range m {
		w.Manifests[name] = man
	}
	return append(diags, spec.CheckPlugs(w.Deployment, m)...)
}

// Store opens the workspace's plugin store (see Reader.Store).
func (w *Workspace) Store(o fetch.Options) *fetch.Store { return w.r.Store(w.StateDir, o) }

// ManifestDiagnostics returns the diagnostics of every manifest that a
// fetch error carries (see Reader.LoadManifest), nil when it carries none.
func ManifestDiagnostics(err error) hcl.Diagnostics {
	var out hcl.Diagnostics
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case hcl.Diagnostics:
			out = append(out, e...)
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(e.Unwrap())
		}
	}
	walk(err)
	return out
}

// SplitFetchError splits a fetch error into the diagnostics of the
// manifests it carries (ManifestDiagnostics) and the failures that carry
// none (one per plug: a version not found, a network error, a hash
// mismatch), each keeping its kind.
func SplitFetchError(err error) (diags hcl.Diagnostics, rest []error) {
	parts := []error{err}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			parts = j.Unwrap() // one failure per plug
			break
		}
	}
	for _, part := range parts {
		if d := ManifestDiagnostics(part); len(d) > 0 {
			diags = append(diags, d...)
		} else if part != nil {
			rest = append(rest, part)
		}
	}
	return diags, rest
}

// FetchDiagnostics is SplitFetchError with each plug's input error (a
// source not found, a hostile tree, a hash mismatch) made a diagnostic at
// its plug block of d, "Plug NAME failed", as plugs validate shows its
// errors: the CLI's lock, fetch, build and bundle and the daemon's load say
// it alike, with the place. rest keeps what is not the input's fault.
func FetchDiagnostics(d *spec.Deployment, err error) (diags hcl.Diagnostics, rest []error) {
	diags, parts := SplitFetchError(err)
	for _, part := range parts {
		var pe *fetch.PlugError
		if d != nil && errors.As(part, &pe) && fetch.IsInputError(part) && d.Plug(pe.Plug) != nil {
			rng := d.Plug(pe.Plug).DeclRange
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Plug " + pe.Plug + " failed",
				Detail: sentence(pe.Err.Error()), Subject: &rng})
			continue
		}
		rest = append(rest, part)
	}
	return diags, rest
}

// sentence makes an error message a diagnostic's detail: capitalised, and
// with a full stop when it is one line (not a build's output).
func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") && !strings.Contains(s, "\n") {
		s += "."
	}
	return s
}

// Plugins converts runnable trees (fetch.Store.Runnable) into what the
// render takes, and records their manifests in w.Manifests.
func (w *Workspace) Plugins(trees map[string]*fetch.Tree) map[string]render.Plugin {
	out := make(map[string]render.Plugin, len(trees))
	for name, t := range trees {
		out[name] = render.Plugin{Dir: t.Dir, Source: t.Source, Version: t.Version, Revision: t.Revision, Manifest: t.Manifest}
		w.Manifests[name] = t.Manifest
	}
	return out
}

// CheckRunnable checks, for each enabled plug with a tree in trees and
// for which need says yes, what plugs validate checks of a fetched tree
// (spec.Parser.CheckRunnable): its program and its compatibility. It
// calls done with each plug checked and its diagnostics, in declaration
// order.
func (w *Workspace) CheckRunnable(trees map[string]*fetch.Tree, need func(t *fetch.Tree) bool, done func(plug string, t *fetch.Tree, diags hcl.Diagnostics)) {
	for _, plug := range w.Deployment.Plugs {
		t := trees[plug.Name]
		if !plug.Enabled || t == nil || t.Manifest == nil || !need(t) {
			continue
		}
		done(plug.Name, t, w.parser.CheckRunnable(t.Dir, t.Manifest, plug.SourceRange))
	}
}

// Desired renders the instances of the runnable trees (see render.Desired).
func (w *Workspace) Desired(trees map[string]*fetch.Tree, broker render.BrokerInfo) ([]instance.Spec, hcl.Diagnostics) {
	return render.Desired(w.Deployment, w.Plugins(trees), broker)
}

// ForView is diags as a view shows them (plugs validate, lock, fetch, the
// daemon's errors and status): sorted (spec.Sorted), then capped once over
// everything collected from plugs.hcl, the lock and every manifest, at
// spec.MaxDiagnostics and one last "N more diagnostics not shown"
// (spec.Capped). Ask EnvFailure of the diagnostics before the cap.
func ForView(diags hcl.Diagnostics) hcl.Diagnostics { return spec.Capped(spec.Sorted(diags)) }

// EnvFailure reports whether diags hold a file that could not be read for
// a reason other than a mistake in the input (permissions, I/O errors):
// the environment failed (exit 2), not the input (exit 1).
func EnvFailure(diags hcl.Diagnostics) bool {
	for _, d := range diags {
		if d.Severity == hcl.DiagError && spec.IsReadFailure(d) {
			return true
		}
	}
	return false
}
