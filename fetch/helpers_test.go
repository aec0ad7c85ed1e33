package fetch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/internal/gittest"
	"github.com/plugs-dev/plugs/spec"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// net/http keeps idle client connections of go-git's http transport.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// manifestHCL is a minimal plugin.hcl; build may be "".
func manifestHCL(name, build string) string {
	s := "plugin \"" + name + "\" {\n  version = \"1.0.0\"\n  kind = \"script\"\n  command = [\"sh\", \"./run.sh\"]\n"
	if build != "" {
		s += "  build = " + build + "\n"
	}
	return s + "}\n"
}

func plugOf(name, source, version string) *spec.Plug {
	return &spec.Plug{Name: name, Source: source, Version: version, Enabled: true}
}

func deployment(t testing.TB, plugs ...*spec.Plug) *spec.Deployment {
	dir := t.TempDir()
	f := filepath.Join(dir, "plugs.hcl")
	if err := os.WriteFile(f, []byte("# test deployment\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &spec.Deployment{Filename: f, BaseDir: dir, Plugs: plugs}
}

func newStore(t testing.TB) *Store {
	return Open(filepath.Join(t.TempDir(), ".plugs"), Options{})
}

// pluginRepo is a repository with a plugin at its root and tags
// v1.0.0, v1.2.0, 1.2.5 (annotated), v1.3.0-beta.1 and v2.0.0, and a
// branch "dev"; it returns the repo and the commit of each tag.
func pluginRepo(t testing.TB, root, name string) (*gittest.Repo, map[string]string) {
	r := gittest.NewRepoIn(t, root, name)
	commits := map[string]string{}
	for i, tag := range []string{"v1.0.0", "v1.2.0", "1.2.5", "v1.3.0-beta.1", "v2.0.0"} {
		commits[tag] = r.Commit(map[string]string{
			"plugin.hcl": manifestHCL(name, ""),
			"run.sh*":    "#!/bin/sh\necho " + tag + "\n",
			"VERSION":    strings.Repeat("x", i) + tag + "\n",
		})
		if tag == "1.2.5" {
			r.AnnotatedTag(tag)
		} else {
			r.Tag(tag)
		}
	}
	r.Branch("dev")
	commits["dev"] = r.Commit(map[string]string{"DEV": "dev\n"})
	r.Checkout("main")
	return r, commits
}

func mustLock(t testing.TB, s *Store, d *spec.Deployment, old *spec.Lock, update ...string) *spec.Lock {
	t.Helper()
	l, err := s.Lock(context.Background(), d, old, update)
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	return l
}

func mustFetch(t testing.TB, s *Store, d *spec.Deployment, l *spec.Lock, frozen bool) []*Tree {
	t.Helper()
	trees, err := s.Fetch(context.Background(), d, l, FetchOptions{Frozen: frozen})
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	return trees
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
