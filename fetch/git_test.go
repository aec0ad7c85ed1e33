package fetch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/internal/gittest"
	"github.com/plugs-dev/plugs/spec"
)

func TestGitServers(t *testing.T) {
	root := t.TempDir()
	_, commits := pluginRepo(t, root, "hr")
	mono := gittest.NewRepoIn(t, root, "mono")
	monoCommit := mono.Commit(map[string]string{
		"README":                  "a repo with plugins in folders\n",
		"plugins/temp/plugin.hcl": manifestHCL("temp", ""),
		"plugins/temp/run.sh*":    "#!/bin/sh\necho temp\n",
		"plugins/temp/link":       "",
	})
	bare := gittest.NewRepoIn(t, root, "bare")
	bare.Commit(map[string]string{"cmd/bridge/main.sh": "echo bridge\n"})
	bare.Tag("v0.1.0")

	for name, base := range map[string]string{"daemon": gittest.Daemon(t, root), "http": gittest.HTTP(t, root)} {
		t.Run(name, func(t *testing.T) {
			inline := &spec.Manifest{Name: "bridge", Command: []string{"sh", "main.sh"}, Format: spec.FormatInline}
			bridge := plugOf("bridge", "git::"+base+"/bare//cmd/bridge", "v0.1.0")
			bridge.Plugin = inline
			d := deployment(t,
				plugOf("hr", "git::"+base+"/hr", "~> 1.2"),
				plugOf("temp", "git::"+base+"/mono//plugins/temp", ""),
				plugOf("hr-dev", "git::"+base+"/hr", "dev"),
				bridge,
			)
			s := newStore(t)
			l := mustLock(t, s, d, nil)
			if e := l.Plugs["hr"]; e.Version != "1.2.5" || e.Revision != commits["1.2.5"] || !strings.HasPrefix(e.Hash, "h2:") {
				t.Errorf("hr locked to %+v, want 1.2.5 at %s", e, commits["1.2.5"])
			}
			if e := l.Plugs["temp"]; e.Version != "main" || e.Revision != monoCommit {
				t.Errorf("temp locked to %+v", e)
			}
			if e := l.Plugs["hr-dev"]; e.Revision != commits["dev"] {
				t.Errorf("hr-dev locked to %+v", e)
			}
			trees := mustFetch(t, s, d, l, true)
			if len(trees) != 4 {
				t.Fatalf("%d trees", len(trees))
			}
			hr := trees[0]
			if got := readFile(t, filepath.Join(hr.Dir, "VERSION")); got != "xx1.2.5\n" {
				t.Errorf("hr VERSION = %q", got)
			}
			if st, err := os.Stat(filepath.Join(hr.Dir, "run.sh")); err != nil || st.Mode()&0o111 == 0 || st.Mode()&0o222 != 0 {
				t.Errorf("run.sh must be executable and read-only: %v %v", st.Mode(), err)
			}
			if hr.Manifest == nil || hr.Manifest.Name != "hr" || !hr.Built {
				t.Errorf("hr manifest %+v built %v", hr.Manifest, hr.Built)
			}
			if _, err := os.Stat(filepath.Join(trees[1].Dir, "plugin.hcl")); err != nil {
				t.Errorf("the subdir is the tree root: %v", err)
			}
			if _, err := os.Stat(filepath.Join(trees[1].Dir, "README")); err == nil {
				t.Error("files outside the subdir were checked out")
			}
			if trees[3].Manifest != inline {
				t.Error("the inline plugin block is the manifest")
			}
			run, err := s.Runnable(d, l)
			if err != nil || len(run) != 4 {
				t.Fatalf("runnable: %v %v", run, err)
			}
		})
	}
}

func TestSecondFetchMakesNoConnection(t *testing.T) {
	root := t.TempDir()
	repo, commits := pluginRepo(t, root, "hr")
	daemon := gittest.Daemon(t, root)
	proxy := gittest.NewProxy(t, strings.TrimPrefix(daemon, "git://"))
	d := deployment(t, plugOf("hr", "git::git://"+proxy.Addr+"/hr", "~> 1.0"))
	s := newStore(t)
	l := mustLock(t, s, d, nil)
	afterLock := proxy.Connections()
	if afterLock == 0 {
		t.Fatal("lock made no connection")
	}
	mustFetch(t, s, d, l, true)
	mustFetch(t, s, d, l, false)
	if _, err := s.Lock(context.Background(), d, l, nil); err != nil {
		t.Fatal(err)
	}
	// The tree is gone but the mirror has the revision: still no connection.
	if err := removeTree(s.plugDir("hr")); err != nil {
		t.Fatal(err)
	}
	mustFetch(t, s, d, l, true)
	if n := proxy.Connections(); n != afterLock {
		t.Fatalf("fetch of an unchanged lock made %d connections", n-afterLock)
	}
	// A new release is resolved by lock -update, fetched into the same mirror.
	repo.Commit(map[string]string{"NEW": "1.4\n"})
	repo.Tag("v1.4.0")
	l2 := mustLock(t, s, d, l, "hr")
	if l2.Plugs["hr"].Version != "v1.4.0" || l2.Plugs["hr"].Revision == commits["1.2.5"] {
		t.Fatalf("update resolved %+v", l2.Plugs["hr"])
	}
	if proxy.Connections() == afterLock {
		t.Fatal("lock -update made no connection")
	}
	trees := mustFetch(t, s, d, l2, true)
	if got := readFile(t, filepath.Join(trees[0].Dir, "NEW")); got != "1.4\n" {
		t.Errorf("NEW = %q", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.dir, "cache", "git")); len(ents) != 1 {
		t.Errorf("want one mirror, got %d", len(ents))
	}
}

func TestGitErrors(t *testing.T) {
	root := t.TempDir()
	pluginRepo(t, root, "hr")
	base := gittest.Daemon(t, root)
	authed := gittest.HTTP(t, root, "alice", "s3cret")
	ctx := context.Background()
	s := newStore(t)
	for _, tc := range []struct {
		name, source, version, want string
		input                       bool
	}{
		{"unknown tag", "git::" + base + "/hr", "v9", `no tag or branch "v9"`, true},
		{"unknown tag lists tags", "git::" + base + "/hr", "v9", "tags: v2.0.0, v1.3.0-beta.1, 1.2.5, v1.2.0, v1.0.0", true},
		{"unsatisfiable", "git::" + base + "/hr", "~> 3.0", "candidates: v2.0.0", true},
		{"no such repo", "git::" + base + "/nope", "", "not found", true},
		{"unreachable", "git::git://127.0.0.1:1/hr", "", "host unreachable", false},
		{"no credentials", "git::" + authed + "/hr", "", "authentication required", false},
		{"wrong credentials", "git::" + strings.Replace(authed, "://", "://alice:wrong-pw@", 1) + "/hr", "", "refused the credentials in the URL", false},
		{"wrong token alone", "git::" + strings.Replace(authed, "://", "://wrong-pw@", 1) + "/hr", "", "refused the credentials in the URL", false},
		{"missing subdir", "git::" + base + "/hr//nope", "v1.0.0", `no folder "nope"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := deployment(t, plugOf("p", tc.source, tc.version))
			_, err := s.Lock(ctx, d, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "plug p: ") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if IsInputError(err) != tc.input {
				t.Errorf("input error = %v, want %v", IsInputError(err), tc.input)
			}
			if strings.Contains(err.Error(), "wrong-pw") || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("credentials in %v", err)
			}
			if strings.Contains(tc.source, "wrong-pw") && strings.Contains(err.Error(), "put credentials in the URL") {
				t.Errorf("credentials that were sent and refused get the advice to send some: %v", err)
			}
		})
	}
	// The right credentials in the URL work, and never reach the lock.
	d := deployment(t, plugOf("p", "git::"+strings.Replace(authed, "://", "://alice:s3cret@", 1)+"/hr", "v1.0.0"))
	l := mustLock(t, s, d, nil)
	if b := FormatLock(l); strings.Contains(string(b), "s3cret") {
		t.Errorf("credentials in the lock:\n%s", b)
	}
	mustFetch(t, s, d, l, true)
}

// TestGitSourceWithoutSchemeRefused: "alice:token@host/repo.git" is an
// https URL whose scheme was forgotten, not the scp-like ssh form: plugs
// lock and a config repository refuse it as wrong input, without a
// connection and without the token in the error.
func TestGitSourceWithoutSchemeRefused(t *testing.T) {
	s := newStore(t)
	for _, src := range []string{"git::alice:s3cr3tT0ken@127.0.0.1/p2.git", "git::bob:s3cr3tT0ken@127.0.0.1:p2.git"} {
		_, err := s.Lock(context.Background(), deployment(t, plugOf("p", src, "")), nil, nil)
		if err == nil || !IsInputError(err) || !strings.Contains(err.Error(), "https://user:token@host") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("lock of %s: %v", src, err)
		}
	}
	_, err := s.OpenConfigRepo("bob:s3cr3tT0ken@127.0.0.1/cfg.git", "main", filepath.Join(t.TempDir(), "cfg"))
	if err == nil || !IsInputError(err) || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("config repository: %v", err)
	}
}

// TestGitTreeWithEscapingLinkIsInputError: a commit whose tree holds a
// symlink out of it (pw -> /etc/passwd, ../../x) or one that dangles is
// refused as the same tree in an archive is: an input error of the plug
// (exit 1, at its block), not an environment failure retried forever.
func TestGitTreeWithEscapingLinkIsInputError(t *testing.T) {
	root := t.TempDir()
	base := gittest.Daemon(t, root)
	for i, target := range []string{"/etc/passwd", "../../../etc/passwd", "missing"} {
		name := fmt.Sprintf("h%d", i)
		r := gittest.NewRepoIn(t, root, name)
		if err := os.Symlink(target, filepath.Join(r.Dir, "pw")); err != nil {
			t.Fatal(err)
		}
		r.Commit(map[string]string{"plugin.hcl": manifestHCL(name, ""), "run.sh*": "#!/bin/sh\n"})
		r.Tag("v1.0.0")
		s := newStore(t)
		d := deployment(t, plugOf("p", "git::"+base+"/"+name, "v1.0.0"))
		_, err := s.Lock(context.Background(), d, nil, nil)
		var pe *PlugError
		if err == nil || !IsInputError(err) || !errors.As(err, &pe) || pe.Plug != "p" || !strings.Contains(err.Error(), "pw") {
			t.Errorf("link to %s: %v (input error: %v)", target, err, IsInputError(err))
		}
	}
}
