package fetch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/internal/gittest"
)

// TestRefSpellingsResolveAlike: every spelling of a ref resolves to the
// same commit, with the same error kind and message, for a plug's version
// and for the GitOps config repository's ref, because both go through one
// resolver. A second resolver (the daemon once had its own, which took a
// branch before a tag and knew no short commit) fails this table.
func TestRefSpellingsResolveAlike(t *testing.T) {
	root := t.TempDir()
	r := gittest.NewRepoIn(t, root, "cfg")
	files := func(v string) map[string]string {
		return map[string]string{"plugin.hcl": manifestHCL("cfg", ""), "run.sh*": "#!/bin/sh\n", "VERSION": v + "\n", "plugs.hcl": "# " + v + "\n"}
	}
	c1 := r.Commit(files("1"))
	r.Tag("v1.0.0")
	c2 := r.Commit(files("2"))
	r.AnnotatedTag("v1.1.0")
	c3 := r.Commit(files("3"))
	r.Tag("same") // a tag and a branch of one name: the tag wins
	r.Branch("dev")
	c4 := r.Commit(files("4"))
	r.Checkout("main")
	r.Branch("same")
	c5 := r.Commit(files("5"))
	r.Checkout("main")
	_ = c5
	url := gittest.Daemon(t, root) + "/cfg"

	for _, tc := range []struct {
		ref, commit, err string
	}{
		{ref: "", commit: c3},
		{ref: "HEAD", commit: c3},
		{ref: "main", commit: c3},
		{ref: "@main", commit: c3},
		{ref: "refs/heads/main", commit: c3},
		{ref: "dev", commit: c4},
		{ref: "refs/heads/dev", commit: c4},
		{ref: "v1.0.0", commit: c1},
		{ref: "refs/tags/v1.0.0", commit: c1},
		{ref: "v1.1.0", commit: c2}, // annotated: the commit, not the tag object
		{ref: "refs/tags/v1.1.0", commit: c2},
		{ref: "~> 1.0", commit: c2},
		{ref: "same", commit: c3},
		{ref: "refs/heads/same", commit: c5},
		{ref: c2, commit: c2},
		{ref: c1[:7], commit: c1}, // a short commit at no tip
		{ref: c4[:12], commit: c4},
		{ref: "nope", err: `no tag or branch "nope" in ` + url},
		{ref: "refs/heads/nope", err: `no branch "nope" in ` + url + `; branches: dev, main, same`},
		{ref: "refs/tags/nope", err: `no tag "nope" in ` + url},
		{ref: "0000000", err: `no tag, branch or commit "0000000" in ` + url},
	} {
		t.Run(strings.ReplaceAll(tc.ref, "/", "_"), func(t *testing.T) {
			ctx := context.Background()
			// A plug's version.
			s := newStore(t)
			var plugCommit string
			l, plugErr := s.Lock(ctx, deployment(t, plugOf("p", "git::"+url, tc.ref)), nil, nil)
			if plugErr == nil {
				plugCommit = l.Plugs["p"].Revision
			}
			// The config repository's ref, from a store of its own.
			cr, err := newStore(t).OpenConfigRepo(url, tc.ref, filepath.Join(t.TempDir(), "config-repo"))
			if err != nil {
				t.Fatal(err)
			}
			repoCommit, repoErr := cr.Head(ctx)

			if tc.err == "" {
				if plugErr != nil || repoErr != nil || plugCommit != tc.commit || repoCommit != tc.commit {
					t.Errorf("plug: %s %v; config repo: %s %v; want %s", plugCommit, plugErr, repoCommit, repoErr, tc.commit)
				}
				return
			}
			for what, err := range map[string]error{"plug": plugErr, "config repo": repoErr} {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !IsInputError(err) {
					t.Errorf("%s: %v (input error %v), want an input error with %q", what, err, IsInputError(err), tc.err)
				}
			}
		})
	}
}

// TestConfigRepoCheckout: the polled commit is written into the folder
// whole; a commit fetched before checks out with the server gone; a local
// edit is discarded; credentials in the URL reach the server and are never
// written to disk.
func TestConfigRepoCheckout(t *testing.T) {
	root := t.TempDir()
	r := gittest.NewRepoIn(t, root, "cfg")
	first := r.Commit(map[string]string{"deploy/plugs.hcl": "# first\n", "deploy/plugins/x/run.sh*": "#!/bin/sh\n"})
	second := r.Commit(map[string]string{"deploy/plugs.hcl": "# second\n", "deploy/plugins/x/run.sh*": ""})
	url := gittest.HTTP(t, root, "bob", "hunter2") + "/cfg"

	stateDir := filepath.Join(t.TempDir(), ".plugs")
	dir := filepath.Join(stateDir, "config-repo")
	ctx := context.Background()

	// Without the credentials the server says no, in fetch's words.
	cr, err := Open(stateDir, Options{}).OpenConfigRepo(url, "main", dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cr.Head(ctx); err == nil || !strings.Contains(err.Error(), "authentication required") {
		t.Errorf("head without credentials: %v", err)
	}

	authed := strings.Replace(url, "http://", "http://bob:hunter2@", 1)
	cr, err = Open(stateDir, Options{}).OpenConfigRepo(authed, "main", dir)
	if err != nil {
		t.Fatal(err)
	}
	head, err := cr.Head(ctx)
	if err != nil || head != second {
		t.Fatalf("head = %s, %v; want %s", head, err, second)
	}
	if err := cr.Checkout(ctx, first); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "deploy/plugs.hcl")); got != "# first\n" || cr.Current() != first {
		t.Errorf("after checkout of the first commit: %q, current %s", got, cr.Current())
	}
	if st, err := os.Stat(filepath.Join(dir, "deploy/plugins/x/run.sh")); err != nil || st.Mode()&0o100 == 0 {
		t.Errorf("run.sh: %v, %v; want executable", st, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "deploy/plugs.hcl"), []byte("# edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cr.Checkout(ctx, second); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "deploy/plugs.hcl")); got != "# second\n" {
		t.Errorf("after checkout of the second commit: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "deploy/plugins/x/run.sh")); !os.IsNotExist(err) {
		t.Errorf("a file removed by the commit is still there: %v", err)
	}

	// A restart (a new value) while the server is down checks out a
	// commit the mirror holds; the head lookup says the host is unreachable.
	gitURL, stop := gittest.StoppableDaemon(t, root)
	gdir := filepath.Join(stateDir, "config-repo-git")
	cr, err = Open(stateDir, Options{}).OpenConfigRepo(gitURL+"/cfg", "main", gdir)
	if err != nil {
		t.Fatal(err)
	}
	if err := cr.Checkout(ctx, first); err != nil {
		t.Fatal(err)
	}
	stop()
	cr, err = Open(stateDir, Options{}).OpenConfigRepo(gitURL+"/cfg", "main", gdir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cr.Head(ctx); err == nil || !strings.Contains(err.Error(), "host unreachable") {
		t.Errorf("head with the server gone: %v", err)
	}
	if err := cr.Checkout(ctx, second); err != nil {
		t.Errorf("checkout of a mirrored commit with the server gone: %v", err)
	}

	// No file under the state dir holds the password.
	_ = filepath.WalkDir(stateDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "hunter2") {
				t.Errorf("%s holds the password", p)
			}
		}
		return nil
	})
	entries, _ := os.ReadDir(stateDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".config-repo") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestConfigRepoRefusesEscapingSymlink: the config repository is written
// by the defensive writer of plugin trees, so a plugs.hcl that links out of
// the checkout (to a file of the daemon's host) is refused, and the last
// checkout stays as it was.
func TestConfigRepoRefusesEscapingSymlink(t *testing.T) {
	root := t.TempDir()
	r := gittest.NewRepoIn(t, root, "cfg")
	good := r.Commit(map[string]string{"plugs.hcl": "# good\n"})
	if err := os.Remove(filepath.Join(r.Dir, "plugs.hcl")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(r.Dir, "plugs.hcl")); err != nil {
		t.Fatal(err)
	}
	hostile := r.Commit(nil)
	url := gittest.Daemon(t, root) + "/cfg"
	dir := filepath.Join(t.TempDir(), "config-repo")
	cr, err := newStore(t).OpenConfigRepo(url, "main", dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := cr.Checkout(ctx, good); err != nil {
		t.Fatal(err)
	}
	if err := cr.Checkout(ctx, hostile); err == nil {
		t.Fatal("a checkout with a symlink to /etc/passwd succeeded")
	}
	if got := readFile(t, filepath.Join(dir, "plugs.hcl")); got != "# good\n" || cr.Current() != good {
		t.Errorf("after the refused checkout: plugs.hcl %q, current %s; want the good commit", got, cr.Current())
	}
}
