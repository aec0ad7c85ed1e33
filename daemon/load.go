package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/metrics"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
)

// LockFileName is the lock's name, beside plugs.hcl.
const LockFileName = "plugs.lock.hcl"

// loader turns a plugs.hcl and its lock into desired instances: the part of
// a reconcile that may fail on bad input, and so runs before anything changes.
type loader struct {
	store *fetch.Store
	// offline (bundles) only uses trees already in the store; otherwise a
	// missing or stale lock entry is resolved and fetched.
	offline bool
	// broker returns the broker instances are told about.
	broker func(d *spec.Deployment) render.BrokerInfo
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
}

// load reads file (and the lock beside it), brings the plugins in, and
// renders the desired instances. Its errors are *Error: KindInput for what
// a human must fix (with the rendered diagnostics), KindEnv otherwise.
func (l *loader) load(ctx context.Context, file string, vars map[string]string) (*loaded, error) {
	parser := spec.NewParser()
	dep, diags := parser.LoadDeployment(file, vars)
	if diags.HasErrors() {
		return nil, diagError(parser, diags)
	}
	lockFile := filepath.Join(filepath.Dir(file), LockFileName)
	lock := &spec.Lock{Filename: lockFile, Plugs: map[string]*spec.LockedPlug{}}
	if _, err := os.Stat(lockFile); err == nil {
		var ldiags hcl.Diagnostics
		lock, ldiags = parser.LoadLock(lockFile)
		if ldiags.HasErrors() {
			return nil, diagError(parser, ldiags)
		}
	}
	before := snapshotLock(lock)

	if !l.offline {
		if _, err := l.store.Fetch(ctx, dep, lock, fetch.FetchOptions{}); err != nil {
			return nil, fetchError(err)
		}
	}
	trees, err := l.store.Runnable(dep, lock)
	if err != nil {
		return nil, fetchError(err)
	}
	plugins := make(map[string]render.Plugin, len(trees))
	var infos []metrics.PluginInfo
	manifests := map[string]*spec.Manifest{}
	for name, t := range trees {
		plugins[name] = render.Plugin{Dir: t.Dir, Source: t.Source, Version: t.Version, Revision: t.Revision, Manifest: t.Manifest}
		manifests[name] = t.Manifest
		infos = append(infos, metrics.PluginInfo{Plug: name, Version: t.Version, Revision: t.Revision, Source: t.Source})
	}
	// Params are merged and type-checked once, by the render.
	desired, diags := render.Desired(dep, plugins, l.broker(dep))
	if diags.HasErrors() {
		return nil, diagError(parser, diags)
	}
	return &loaded{
		dep:         dep,
		lock:        lock,
		desired:     desired,
		plugins:     infos,
		manifests:   manifests,
		lockChanged: !maps.Equal(before, snapshotLock(lock)),
		contentHash: contentHash(file, lockFile),
	}, nil
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
// daemon that runs a plain file.
func contentHash(files ...string) string {
	h := sha256.New()
	for _, f := range files {
		b, _ := os.ReadFile(f)
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// diagError renders diagnostics as the CLI shows them.
func diagError(p *spec.Parser, diags hcl.Diagnostics) error {
	var buf bytes.Buffer
	wr := hcl.NewDiagnosticTextWriter(&buf, p.Files(), 78, false)
	_ = wr.WriteDiagnostics(spec.Sorted(diags))
	return &Error{Kind: KindInput, Message: strings.TrimRight(buf.String(), "\n")}
}

// fetchError classifies a fetch error: a wrong source or lock is the
// user's to fix; a network or disk failure is the environment's.
func fetchError(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	kind := KindEnv
	if fetch.IsInputError(err) {
		kind = KindInput
	}
	return &Error{Kind: kind, Message: err.Error()}
}
