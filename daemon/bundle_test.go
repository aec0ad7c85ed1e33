package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/spec"
)

// siteBundle builds, in a state dir of its own, the bundle of one sleeper
// plug "a" and returns its path and lock.
func siteBundle(t *testing.T) (string, *spec.Lock) {
	t.Helper()
	src := t.TempDir()
	for name, content := range sleeperPlugin {
		writeFile(t, filepath.Join(src, name), content)
	}
	file := filepath.Join(src, "plugs.hcl")
	writeFile(t, file, sleeperDeployment(map[string]string{"a": "3s"}))
	ctx := context.Background()
	dep, diags := spec.NewParser().LoadDeployment(file, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	store := fetch.Open(filepath.Join(src, ".plugs"), fetch.Options{})
	lock, err := store.Lock(ctx, dep, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Fetch(ctx, dep, lock, fetch.FetchOptions{Frozen: true}); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "site.tar.gz")
	if err := store.WriteBundle(ctx, bundle, dep, lock); err != nil {
		t.Fatal(err)
	}
	return bundle, lock
}

// TestRunBundle builds a bundle in one state dir and runs it from another,
// empty one: the daemon needs nothing but the bundle.
func TestRunBundle(t *testing.T) {
	bundle, lock := siteBundle(t)
	stateDir := t.TempDir()
	c := startDaemon(t, Options{StateDir: stateDir, Bundle: bundle})
	st := waitStatus(t, c, "a/default running", func(s *api.Status) bool {
		a := statusOf(s, "a", "default")
		return a != nil && a.PID > 0
	})
	if st.Daemon.Mode != ModeBundle || st.Daemon.LastReconcile.Error != "" || st.Daemon.ConfigRevision == "" {
		t.Errorf("bundle daemon: %+v", st.Daemon)
	}
	if a := statusOf(st, "a", "default"); a.Revision != lock.Plugs["a"].Revision {
		t.Errorf("revision %s, want the locked %s", a.Revision, lock.Plugs["a"].Revision)
	}
}

// TestRestartWithABadBundleRunsTheLastVerified: the bundle is replaced by
// a truncated one while the daemon is down (a crash, a reboot after a bad
// copy): the next daemon runs the last bundle it verified and says why,
// instead of exiting with nothing running.
func TestRestartWithABadBundleRunsTheLastVerified(t *testing.T) {
	bundle, _ := siteBundle(t)
	stateDir := t.TempDir()
	running := func(s *api.Status) bool { a := statusOf(s, "a", "default"); return a != nil && a.PID > 0 }
	t.Run("first start", func(t *testing.T) {
		c := startDaemon(t, Options{StateDir: stateDir, Bundle: bundle})
		waitStatus(t, c, "a/default running", running)
	})

	b, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, bundle, string(b[:len(b)/2]))
	c := startDaemon(t, Options{StateDir: stateDir, Bundle: bundle})
	st := waitStatus(t, c, "a/default running from the last verified bundle", running)
	if r := st.Daemon.LastReconcile; r == nil || !strings.Contains(r.Error, "running the last verified bundle") || !strings.Contains(r.Error, "site.tar.gz") {
		t.Errorf("last reconcile %+v, want it to say the bundle failed and the last verified one runs", r)
	}
}
