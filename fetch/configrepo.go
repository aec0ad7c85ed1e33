package fetch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
)

// ConfigRepo is the GitOps configuration repository: a git source like a
// plug's, reached by the same client (the store's mirror, credentials from
// the URL's userinfo, the same errors and error kinds) and resolved by the
// same resolver (Store.resolveRef), with one commit checked out in a
// folder through the same defensive writer as plugin trees. It is not safe
// for concurrent use; the daemon calls it from its reconcile only.
type ConfigRepo struct {
	s   *Store
	src *source
	ref string
	dir string
	// current is the commit checked out in dir by this value; zero at
	// first, so that the first Checkout always writes dir.
	current plumbing.Hash
}

// OpenConfigRepo returns the config repository at rawURL (a git URL as a
// plug source takes it after "git::", a "git::" prefix allowed, and a
// "//subdir"), following ref (anything a plug's version may be: a branch,
// a tag, a full ref name, a commit, a short commit, a constraint over the
// tags; "" or "HEAD" for the remote's default branch), checked out in dir.
// It opens no connection.
func (s *Store) OpenConfigRepo(rawURL, ref, dir string) (*ConfigRepo, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	src, err := parseSource("git::"+strings.TrimPrefix(rawURL, "git::"), wd)
	if err != nil {
		return nil, err
	}
	return &ConfigRepo{s: s, src: src, ref: ref, dir: dir}, nil
}

// Dir is the folder the checked-out commit is in.
func (c *ConfigRepo) Dir() string { return c.dir }

// Current is the commit Checkout last wrote into Dir, "" before.
func (c *ConfigRepo) Current() string {
	if c.current.IsZero() {
		return ""
	}
	return c.current.String()
}

// Head looks up the commit the ref names on the remote: one ref listing,
// and no object transfer unless the ref is a short commit id.
func (c *ConfigRepo) Head(ctx context.Context) (string, error) {
	refs, err := c.s.listRefs(ctx, c.src)
	if err != nil {
		return "", err
	}
	res, err := c.s.resolveRef(ctx, c.src, refs, c.ref)
	if err != nil {
		return "", err
	}
	return res.Commit.String(), nil
}

// Checkout makes Dir hold commit (a full id), fetching only when the
// mirror lacks it: a commit fetched before checks out offline. Dir is
// replaced whole, never left half written, and local changes to it are
// discarded.
func (c *ConfigRepo) Checkout(ctx context.Context, commit string) error {
	if !fullHashRE.MatchString(commit) {
		return inputErrorf("config repository %s: %q is not a commit id", redact(c.src.location), commit)
	}
	h := plumbing.NewHash(commit)
	if h == c.current {
		return nil
	}
	parent := filepath.Dir(c.dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp := tempName(parent, ".config-repo-")
	unlock := c.s.lockKey("git:" + c.src.location)
	repo, err := c.s.ensureCommit(ctx, c.src, h)
	if err == nil {
		err = checkoutTree(repo, c.src, h, tmp, c.s.opts.Limits)
	}
	unlock()
	if err == nil {
		err = c.replaceDir(tmp)
	}
	if err != nil {
		_ = removeTree(tmp)
		return err
	}
	c.current = h
	return nil
}

// replaceDir puts the folder tmp in Dir's place. These are renames of
// whole folders, not atomic file writes: the old checkout moves aside,
// the new one takes its name, and the old one is removed.
func (c *ConfigRepo) replaceDir(tmp string) error {
	old := tempName(filepath.Dir(c.dir), ".config-repo-old-")
	if err := os.Rename(c.dir, old); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("config repository checkout: %w", err)
	}
	if err := os.Rename(tmp, c.dir); err != nil {
		_ = os.Rename(old, c.dir)
		return fmt.Errorf("config repository checkout: %w", err)
	}
	_ = removeTree(old)
	return nil
}
