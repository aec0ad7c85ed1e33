package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/storage/memory"
	"github.com/plugs-dev/plugs/internal/layout"
)

// mirrorDir is the bare mirror of a git remote in the cache.
func (s *Store) mirrorDir(src *source) string {
	sum := sha256.Sum256([]byte(src.location))
	return layout.Cache(s.dir, "git", hex.EncodeToString(sum[:]))
}

// openMirror opens (or creates) the bare mirror of src. Callers hold the
// mirror's lock.
func (s *Store) openMirror(src *source) (*git.Repository, error) {
	dir := s.mirrorDir(src)
	repo, err := git.PlainOpen(dir)
	if err == nil {
		return repo, nil
	}
	if !errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("open mirror of %s: %w", src.location, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	tmp := tempName(filepath.Dir(dir), ".init-")
	if _, err := git.PlainInit(tmp, true); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("create mirror of %s: %w", src.location, err)
	}
	// A folder renamed into place (not a file write: internal/atomicfile
	// is for files), so that a half-made mirror never takes the name.
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		if _, statErr := os.Stat(dir); statErr != nil {
			return nil, err
		}
	}
	return git.PlainOpen(dir)
}

// listRefs asks the remote for its tags and branches (one round trip).
func (s *Store) listRefs(ctx context.Context, src *source) (*remoteRefs, error) {
	if s.opts.Offline {
		return nil, fmt.Errorf("%s: offline: cannot resolve versions", src.location)
	}
	rem := git.NewRemote(memory.NewStorage(), &config.RemoteConfig{Name: "origin", URLs: []string{src.location}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: src.auth, PeelingOption: git.AppendPeeled})
	if err != nil {
		return nil, gitError("list refs of", src, err)
	}
	return newRemoteRefs(refs), nil
}

// fetchMirror brings the remote's branches and tags into the mirror; only
// objects the mirror lacks travel.
func (s *Store) fetchMirror(ctx context.Context, repo *git.Repository, src *source) error {
	if s.opts.Offline {
		return fmt.Errorf("%s: offline and not in the cache", src.location)
	}
	rem := git.NewRemote(repo.Storer, &config.RemoteConfig{Name: "origin", URLs: []string{src.location}})
	err := rem.FetchContext(ctx, &git.FetchOptions{
		RefSpecs: []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
		Auth:     src.auth,
		Tags:     git.NoTags,
		Force:    true,
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return gitError("fetch", src, err)
	}
	return nil
}

// resolveRef resolves want (a plug's version, or the GitOps ref) over the
// remote's refs, and a short commit id among the objects of the mirror,
// fetched first: the one ref resolver of plugin sources and of the config
// repository (ConfigRepo).
func (s *Store) resolveRef(ctx context.Context, src *source, refs *remoteRefs, want string) (resolved, error) {
	where := redact(src.location)
	res, err := refs.resolve(want, where)
	if err != nil || res.Prefix == "" {
		return res, err
	}
	defer s.lockKey("git:" + src.location)()
	repo, err := s.openMirror(src)
	if err == nil {
		err = s.fetchMirror(ctx, repo, src)
	}
	if err != nil {
		return resolved{}, err
	}
	h, err := commitByPrefix(repo, res.Prefix, where)
	if err != nil {
		return resolved{}, err
	}
	return resolved{Version: refs.tagAt(h), Commit: h}, nil
}

// commitByPrefix finds the one commit of repo whose id starts with prefix.
func commitByPrefix(repo *git.Repository, prefix, where string) (plumbing.Hash, error) {
	iter, err := repo.CommitObjects()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	var found []string
	err = iter.ForEach(func(c *object.Commit) error {
		if id := c.Hash.String(); strings.HasPrefix(id, prefix) {
			found = append(found, id)
		}
		return nil
	})
	switch {
	case err != nil:
		return plumbing.ZeroHash, err
	case len(found) == 0:
		return plumbing.ZeroHash, inputErrorf("no tag, branch or commit %q in %s", prefix, where)
	case len(found) > 1:
		sort.Strings(found)
		return plumbing.ZeroHash, inputErrorf("the short commit id %q is ambiguous in %s (%s): write more digits", prefix, where, list(found))
	}
	return plumbing.NewHash(found[0]), nil
}

func hasCommit(repo *git.Repository, h plumbing.Hash) bool {
	_, err := repo.CommitObject(h)
	return err == nil
}

// ensureCommit makes sure the mirror holds commit h, fetching only when it
// does not: a cached revision costs no network round trip.
func (s *Store) ensureCommit(ctx context.Context, src *source, h plumbing.Hash) (*git.Repository, error) {
	repo, err := s.openMirror(src)
	if err != nil {
		return nil, err
	}
	if hasCommit(repo, h) {
		return repo, nil
	}
	if err := s.fetchMirror(ctx, repo, src); err != nil {
		return nil, err
	}
	if !hasCommit(repo, h) {
		return nil, inputErrorf("commit %s is not on any branch or tag of %s", h, src.location)
	}
	return repo, nil
}

// checkoutTree writes the files of commit h (below src.subdir) into dst,
// which must not exist, through the same defensive writer as archives.
func checkoutTree(repo *git.Repository, src *source, h plumbing.Hash, dst string, lim ExtractLimits) (err error) {
	commit, err := repo.CommitObject(h)
	if err != nil {
		return fmt.Errorf("commit %s: %w", h, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return fmt.Errorf("commit %s: %w", h, err)
	}
	if src.subdir != "" {
		tree, err = tree.Tree(src.subdir)
		if err != nil {
			return inputErrorf("no folder %q at commit %s of %s", src.subdir, h.String()[:12], src.location)
		}
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = removeTree(dst)
		}
	}()
	x := &extractor{dst: dst, lim: lim.withDefaults(), seen: map[string]bool{}}
	err = tree.Files().ForEach(func(f *object.File) error {
		switch f.Mode {
		case filemode.Symlink:
			target, err := f.Contents()
			if err != nil {
				return err
			}
			return treeError(x.symlink(f.Name, target))
		case filemode.Regular, filemode.Deprecated, filemode.Executable:
			r, err := f.Reader()
			if err != nil {
				return err
			}
			defer r.Close()
			mode := fs.FileMode(0o644)
			if f.Mode == filemode.Executable {
				mode = 0o755
			}
			return treeError(x.file(f.Name, mode, r))
		default:
			return nil // submodules are not part of the tree
		}
	})
	if err == nil {
		err = treeError(x.checkSymlinks())
	}
	if err != nil {
		return fmt.Errorf("check out %s of %s: %w", h.String()[:12], redact(src.location), err)
	}
	return nil
}

// treeError is an error of the extractor writing a git tree, as an input
// error when the tree itself is refused (a symlink that leaves it or
// dangles, a name that is not one, over the limits), as extractArchive's
// are: the commit will never check out, so retrying it is no use; a
// failure of the file system writing it (a full disk) stays the
// environment's.
func treeError(err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	var errno syscall.Errno
	if err == nil || errors.As(err, &pe) || errors.As(err, &le) || errors.As(err, &errno) {
		return err
	}
	return &inputError{err}
}

// gitError turns a transport error into one that says what to do, with no
// credentials in it.
func gitError(op string, src *source, err error) error {
	where := redact(src.location)
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s %s: %w", op, where, err)
	case errors.Is(err, transport.ErrAuthenticationRequired) && src.auth != nil:
		// The URL's credentials were sent and refused: advice to put
		// credentials in the URL would say to do what was done.
		return fmt.Errorf("%s %s: authentication failed: the server refused the credentials in the URL; check the user name and token (and that the token has not expired)", op, where)
	case errors.Is(err, transport.ErrAuthenticationRequired):
		return fmt.Errorf("%s %s: authentication required: put credentials in the URL (https://user:token@...) or use ssh with an agent", op, where)
	case errors.Is(err, transport.ErrAuthorizationFailed):
		return fmt.Errorf("%s %s: authorization failed: check the credentials and that they may read the repository", op, where)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return inputErrorf("%s %s: repository not found: check the source URL", op, where)
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		return inputErrorf("%s %s: the repository is empty", op, where)
	case errors.As(err, &oe), errors.As(err, &ne), strings.Contains(err.Error(), "connection refused"), strings.Contains(err.Error(), "no such host"):
		return fmt.Errorf("%s %s: host unreachable (%s): check the network and the URL, or use a bundle", op, where, redact(err.Error()))
	}
	return fmt.Errorf("%s %s: %s", op, where, redact(err.Error()))
}

func plumbingHash(s string) plumbing.Hash { return plumbing.NewHash(s) }
