package fetch

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/plugs-dev/plugs/internal/layout"
)

// racyWindow is how recent a file's change may be for a tree's fingerprint
// to be remembered. File times are kept at the kernel's clock tick, so a
// change made within a tick of the fingerprint could leave the times (and,
// for an overwrite of the same size, the fingerprint) as they were; like
// git's "racily clean" index entries, such a tree is hashed again next time.
const racyWindow = 2 * time.Second

// treeCache remembers, per folder and algorithm, the hash its content had and a
// fingerprint of its files' metadata at that time (name, type, size, inode,
// mtime and ctime of every entry). While the fingerprint is unchanged the
// content cannot have changed (ctime cannot be set back by a user), so the
// hash is not recomputed.
type treeCache struct {
	mu     sync.Mutex
	trees  map[string]treeCheck
	racy   time.Duration // racyWindow; tests shorten it
	hashed int           // full hashes computed; tests read it
}

type treeCheck struct {
	fingerprint [sha256.Size]byte
	hash        string
}

// hashTree returns the hash of dir with the algorithm of the hash want (h2
// when want is ""), like hashDirAs, reading the content only when dir's
// fingerprint differs from the one remembered with its last hash of that
// algorithm (or when there is none).
func (s *Store) hashTree(dir, want string) (string, error) {
	algo := hashAlgo(want)
	key := algo + dir
	before, newest, err := fingerprint(dir)
	if err != nil {
		return "", err
	}
	c := &s.cache.trees
	c.mu.Lock()
	known, ok := c.trees[key]
	c.mu.Unlock()
	if ok && known.fingerprint == before {
		return known.hash, nil
	}
	start := time.Now()
	h, err := hashDirAs(dir, algo)
	if err != nil {
		return "", err
	}
	after, _, err := fingerprint(dir)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hashed++
	if err == nil && after == before && newest.Before(start.Add(-c.racy)) {
		if c.trees == nil {
			c.trees = map[string]treeCheck{}
		}
		c.trees[key] = treeCheck{fingerprint: before, hash: h}
	} else {
		delete(c.trees, key)
	}
	return h, nil
}

// fingerprint digests the metadata of every entry below dir (lstat, no
// content read) and returns the newest change time it saw.
func fingerprint(dir string) (sum [sha256.Size]byte, newest time.Time, err error) {
	h := sha256.New()
	var buf [8]byte
	put := func(v uint64) {
		binary.LittleEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h.Write([]byte(p))
		h.Write([]byte{0})
		put(uint64(info.Mode()))
		put(uint64(info.Size()))
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			put(st.Ino)
			put(uint64(st.Mtim.Nano()))
			put(uint64(st.Ctim.Nano()))
			if c := time.Unix(st.Ctim.Unix()); c.After(newest) {
				newest = c
			}
		} else {
			// No ctime: never remembered (newest is now).
			newest = time.Now()
		}
		if m := info.ModTime(); m.After(newest) {
			newest = m
		}
		return nil
	})
	copy(sum[:], h.Sum(nil))
	return sum, newest, err
}

// VerifyDir checks, before a process starts in dir, that dir is as it was
// fetched or built: the runner calls it before every start, restarts after
// a crash included, so that a tree modified in the store (by hand, or by a
// plugin that writes next to itself) is refused rather than run. It costs a
// metadata walk of the tree (the content is hashed again only when the
// walk differs from the last one). A dir outside the store's plugin trees
// is not the store's to judge and passes.
func (s *Store) VerifyDir(dir string) error {
	plugs := layout.Plugins(s.dir)
	rel, err := filepath.Rel(plugs, filepath.Clean(dir))
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return nil
	}
	parts := strings.Split(rel, string(filepath.Separator))
	if len(parts) < 2 {
		return nil
	}
	plug, key := parts[0], parts[1]
	m, err := s.readMarker(plug, key)
	if err != nil {
		return fmt.Errorf("tree %s is not a complete fetch: %w; run plugs fetch", dir, err)
	}
	want := m.Hash
	if m.Built {
		want = m.BuiltHash
	}
	root := s.treeDir(plug, key)
	got, err := s.hashTree(root, want)
	if err != nil {
		return fmt.Errorf("verify tree %s: %w", root, err)
	}
	if got != want {
		return inputErrorf("tree %s was modified: expected %s, actual %s; remove it and run plugs fetch", root, want, got)
	}
	return nil
}

// VerifyDirs is VerifyDir of every dir, Options.Parallel at a time; the
// errors are joined in the order of dirs.
func (s *Store) VerifyDirs(dirs []string) error {
	errs := make([]error, len(dirs))
	var g errgroup.Group
	g.SetLimit(s.opts.Parallel)
	for i, dir := range dirs {
		g.Go(func() error {
			errs[i] = s.VerifyDir(dir)
			return nil
		})
	}
	_ = g.Wait() // every func returns nil: errs holds the errors
	return joinErrors(errs)
}
