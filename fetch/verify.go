package fetch

import (
	"crypto/sha256"
	"encoding/binary"
	"io/fs"
	"path/filepath"
	"sync"
	"syscall"
	"time"
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
	c := &s.treeCache
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
