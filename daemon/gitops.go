package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/plugs-dev/plugs/internal/redact"
)

// configRepo is the GitOps checkout of the configuration repository in
// <state>/config-repo. It is used by the daemon's loop goroutine only.
type configRepo struct {
	url  string
	ref  string // a branch, a tag, a full ref name, or "" for the remote's HEAD
	dir  string
	repo *git.Repository
	// current is the commit checked out by this process; zero at first, so
	// the first poll always checks out (a clone is made without checkout).
	current plumbing.Hash
}

// openConfigRepo opens the checkout in dir, cloning url into it first when
// it is not there yet.
func openConfigRepo(ctx context.Context, rawURL, ref, dir string) (*configRepo, error) {
	c := &configRepo{url: rawURL, ref: ref, dir: dir}
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, fmt.Errorf("clone %s: %w", redactURL(rawURL), err)
		}
		tmp, err := os.MkdirTemp(filepath.Dir(dir), ".config-repo-*")
		if err != nil {
			return nil, fmt.Errorf("clone %s: %w", redactURL(rawURL), err)
		}
		defer os.RemoveAll(tmp)
		if _, err := git.PlainCloneContext(ctx, tmp, false, &git.CloneOptions{URL: rawURL, NoCheckout: true}); err != nil {
			return nil, fmt.Errorf("clone %s: %w", redactURL(rawURL), err)
		}
		// A half-cloned repository never takes the final name.
		if err := os.Rename(tmp, dir); err != nil {
			return nil, fmt.Errorf("clone %s: %w", redactURL(rawURL), err)
		}
		return openConfigRepo(ctx, rawURL, ref, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("open config repo %s: %w", dir, err)
	}
	c.repo = repo
	return c, nil
}

// remoteCommit looks up the commit the ref names on the remote, with one
// cheap ref listing and no object transfer.
func (c *configRepo) remoteCommit(ctx context.Context) (plumbing.Hash, error) {
	rem, err := c.repo.Remote(git.DefaultRemoteName)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("config repo remote: %w", err)
	}
	refs, err := rem.ListContext(ctx, &git.ListOptions{PeelingOption: git.AppendPeeled})
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("list refs of %s: %w", redactURL(c.url), err)
	}
	byName := map[plumbing.ReferenceName]*plumbing.Reference{}
	for _, r := range refs {
		byName[r.Name()] = r
	}
	var candidates []plumbing.ReferenceName
	switch {
	case c.ref == "" || c.ref == "HEAD":
		candidates = []plumbing.ReferenceName{plumbing.HEAD}
	default:
		candidates = []plumbing.ReferenceName{
			plumbing.ReferenceName(c.ref),
			plumbing.NewBranchReferenceName(c.ref),
			plumbing.NewTagReferenceName(c.ref),
		}
	}
	for _, name := range candidates {
		r, ok := byName[name]
		if !ok {
			continue
		}
		if r.Type() == plumbing.SymbolicReference {
			if r, ok = byName[r.Target()]; !ok {
				continue
			}
		}
		// An annotated tag: prefer the peeled commit.
		if peeled, ok := byName[plumbing.ReferenceName(string(r.Name())+"^{}")]; ok {
			return peeled.Hash(), nil
		}
		return r.Hash(), nil
	}
	if plumbing.IsHash(c.ref) {
		return plumbing.NewHash(c.ref), nil
	}
	return plumbing.ZeroHash, fmt.Errorf("ref %q not found in %s", c.ref, redactURL(c.url))
}

// checkout fetches the remote and checks out commit, discarding any local
// change to the working tree.
func (c *configRepo) checkout(ctx context.Context, commit plumbing.Hash) error {
	err := c.repo.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"},
		Force:    true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("fetch %s: %w", redactURL(c.url), err)
	}
	return c.checkoutLocal(commit)
}

// checkoutLocal checks out a commit the clone already has, without the
// network.
func (c *configRepo) checkoutLocal(commit plumbing.Hash) error {
	wt, err := c.repo.Worktree()
	if err != nil {
		return fmt.Errorf("config repo worktree: %w", err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: commit, Force: true}); err != nil {
		return fmt.Errorf("check out %s: %w", commit, err)
	}
	c.current = commit
	return nil
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

// lastGoodPath keeps the last commit that reconciled, across restarts.
func lastGoodPath(stateDir string) string { return filepath.Join(stateDir, "config-repo.last-good") }

// readLastGood reads the last good commit a previous run recorded.
func readLastGood(stateDir string) string {
	b, err := os.ReadFile(lastGoodPath(stateDir))
	if s := strings.TrimSpace(string(b)); err == nil && plumbing.IsHash(s) {
		return s
	}
	return ""
}

// canFallBack reports whether a failed head should give way to the last
// good commit: only while this run has applied nothing (at start), when
// one is recorded and it is not the head itself. Called with mu held.
func (d *daemon) canFallBack(head string) bool {
	d.smu.Lock()
	applied := d.applied
	d.smu.Unlock()
	return !applied && d.lastGood != "" && d.lastGood != head
}

// checkoutLastGood checks out the last good commit from the clone, offline.
func (d *daemon) checkoutLastGood() error {
	err := d.repo.checkoutLocal(plumbing.NewHash(d.lastGood))
	if err == nil {
		d.log.Info("config repo checked out the last good commit", "commit", d.lastGood)
	}
	return err
}

// saveLastGood records commit as the last that reconciled. Called with mu
// held.
func (d *daemon) saveLastGood(commit string) {
	if commit == d.lastGood {
		return
	}
	d.lastGood = commit
	d.smu.Lock()
	d.lastGoodShown = commit
	d.smu.Unlock()
	if err := writeFileAtomic(lastGoodPath(d.opts.StateDir), []byte(commit+"\n")); err != nil {
		d.log.Warn("record the last good commit", "err", err)
	}
}

// writeFileAtomic writes b to path by renaming a synced temp file over it.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.Write(b); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// redactURL strips credentials from a URL for logs and status.
func redactURL(raw string) string { return redact.URLString(raw) }
