package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/plugs-dev/plugs/internal/atomicfile"
	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/plugs-dev/plugs/spec"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// Options configure a Store.
type Options struct {
	// Logger receives one line per resolved, fetched or built plug; nil discards.
	Logger *slog.Logger
	// Progress, when not nil, shows progress: a bar on a terminal, plain
	// lines otherwise.
	Progress io.Writer
	// Offline forbids every network connection: only the cache and the
	// plugin trees already present are used.
	Offline bool
	// Limits cap what one archive (a plugin source or a bundle) may unpack to.
	Limits ExtractLimits
	// LoadManifest reads a plugin's manifest from its tree; nil uses the spec
	// parser (plugin.hcl, else plugin.json).
	LoadManifest func(dir string) (*spec.Manifest, error)
	// HTTPClient downloads archive sources (https:// and http:// URLs);
	// nil uses http.DefaultClient (the environment's proxy settings).
	HTTPClient *http.Client
	// Parallel is how many plugs are fetched at once; 0 means 4.
	Parallel int
	// OnFetched, when set, is called (from Fetch's goroutines) with the time
	// each plug took whose tree Fetch had to bring in: resolved, copied,
	// extracted or checked out. A plug whose locked tree was already in the
	// store costs nothing and is not reported.
	OnFetched func(plug string, d time.Duration)
	// Cache, when set, is shared with the other Stores opened with it: what
	// one verified or read, the others do not verify or read again while
	// the files are as they were. nil: the Store has a cache of its own.
	Cache *Cache
}

// Cache is what Stores of one state directory share of their reads: tree
// hashes with their fingerprints (hashTree) and the markers read
// (readMarker). A daemon's loaders and its runner's check before each
// start share one, so that a start right after the reconcile that
// verified its tree walks the tree's metadata instead of hashing it and
// reading its marker again. It is safe for concurrent use.
//
// It also carries whether a Store sharing it installed a tree that is not
// yet flushed to disk (Sync).
type Cache struct {
	trees   treeCache
	markers markerCache
	// unsynced is set by install: a tree and its marker were written
	// without an fsync each; Sync flushes them all at once.
	unsynced atomic.Bool
}

// NewCache returns an empty Cache.
func NewCache() *Cache { return &Cache{trees: treeCache{racy: racyWindow}} }

// Store is the state directory's plugin store: the cache of git mirrors and
// the fetched and built plugin trees. It is safe for concurrent use.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	locks     map[string]*sync.Mutex
	manifests map[string]*spec.Manifest // by tree folder and hashes, see manifest

	cache *Cache // verified tree hashes (hashTree) and markers read (readMarker); see Options.Cache
}

// Open returns the store of a state directory; nothing is created until used.
func Open(stateDir string, opts Options) *Store {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LoadManifest == nil {
		opts.LoadManifest = loadManifest
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 4
	}
	c := opts.Cache
	if c == nil {
		c = NewCache()
	}
	return &Store{dir: stateDir, opts: opts, log: opts.Logger, locks: map[string]*sync.Mutex{}, manifests: map[string]*spec.Manifest{}, cache: c}
}

// Tree is a plug's plugin tree in the store.
type Tree struct {
	Plug     string
	Dir      string // the plugin root: runnable once built
	Source   string // as written in plugs.hcl, without credentials
	Version  string // the resolved tag or branch, "" for local sources
	Revision string // git commit, or content id for local sources
	Hash     string // h1: hash of the source tree, as in the lock
	// Manifest is the plug's inline plugin block, or the tree's manifest.
	Manifest *spec.Manifest
	// Built reports that the tree is runnable: built, or needing no build.
	Built bool
}

// marker is written beside a complete tree (<revision>.done.json); a tree
// without one is incomplete and is never used.
type marker struct {
	Source    string `json:"source"`
	Version   string `json:"version,omitempty"`
	Revision  string `json:"revision"`
	Hash      string `json:"hash"` // of the source tree: the lock's hash
	Built     bool   `json:"built"`
	BuiltHash string `json:"built_hash,omitempty"`
	// BuildCommand is the argv the tree was built with (absent in markers
	// of plugs before it was recorded).
	BuildCommand []string `json:"build_command,omitempty"`
	Archive      string   `json:"archive_sha256,omitempty"` // of a local archive source
}

// builtKey names the built tree of a plug whose inline plugin {} block has
// a build: <revision>.build-<id>, id a digest of the build argv. Such a
// build can change while the revision stays, so its output gets its own
// folder (a new command, a new folder, a new Dir: the instances are
// replaced) and the fetched source at <revision> stays pristine. It returns
// "" for every other plug: a tree's own manifest cannot change its build
// without changing the revision, and is built in place.
func builtKey(p *spec.Plug, rev string) string {
	if p.Plugin == nil || len(p.Plugin.Build) == 0 {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.Join(p.Plugin.Build, "\x00")))
	return rev + ".build-" + hex.EncodeToString(sum[:6])
}

func (s *Store) plugDir(plug string) string { return layout.PluginDir(s.dir, plug) }

// treeDir and markerPath take a tree key: a revision, or a builtKey.

func (s *Store) treeDir(plug, rev string) string { return filepath.Join(s.plugDir(plug), rev) }

func (s *Store) markerPath(plug, rev string) string {
	return filepath.Join(s.plugDir(plug), rev+".done.json")
}

// readMarker reads the marker of plug's tree key rev. A marker whose file
// is as it was when it was last read (same inode, size, mtime and ctime,
// and older than racyWindow then, as for hashTree's fingerprints) is not
// read and decoded again: a load reads the marker of every plug twice
// (Fetch, Runnable), 2,000 reads at 1,000 plugs (issue 17).
func (s *Store) readMarker(plug, rev string) (*marker, error) {
	name := s.markerPath(plug, rev)
	st, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	id, stable := statID(st, s.cache.trees.racy)
	m, ok := s.cache.markers.get(name, id)
	if !ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		m = &marker{}
		if err := json.Unmarshal(b, m); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		// Kept only when the file did not change while it was read.
		if st2, err := os.Stat(name); err == nil && stable {
			if id2, _ := statID(st2, s.cache.trees.racy); id2 == id {
				s.cache.markers.put(name, id, m)
			}
		}
	}
	if _, err := os.Lstat(s.treeDir(plug, rev)); err != nil {
		return nil, err
	}
	c := *m
	c.BuildCommand = slices.Clone(m.BuildCommand)
	return &c, nil
}

// maxCachedMarkers bounds markerCache (~200 bytes an entry).
const maxCachedMarkers = 20000

// markerCache holds the markers readMarker read, by file.
type markerCache struct {
	mu sync.Mutex
	m  map[string]cachedMarker
}

type cachedMarker struct {
	id fileID
	m  *marker
}

// fileID identifies a file's content by its metadata (see readMarker).
type fileID struct {
	ino, size    uint64
	mtime, ctime int64
}

// statID is st's fileID, and whether it changed longer than racy ago.
func statID(st os.FileInfo, racy time.Duration) (fileID, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	id := fileID{ino: sys.Ino, size: uint64(st.Size()), mtime: st.ModTime().UnixNano(), ctime: sys.Ctim.Nano()}
	newest := max(id.mtime, id.ctime)
	return id, time.Since(time.Unix(0, newest)) > racy
}

func (c *markerCache) get(name string, id fileID) (*marker, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[name]
	if !ok || e.id != id {
		return nil, false
	}
	return e.m, true
}

func (c *markerCache) put(name string, id fileID, m *marker) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedMarkers {
		c.m = map[string]cachedMarker{} // bounded: the markers of trees pruned since go too
	}
	c.m[name] = cachedMarker{id: id, m: m}
}

// lockKey serializes work on one mirror or one plug tree within the process.
func (s *Store) lockKey(key string) func() {
	s.mu.Lock()
	m, ok := s.locks[key]
	if !ok {
		m = &sync.Mutex{}
		s.locks[key] = m
	}
	s.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// install moves a complete tree at tmp into place as plug's tree key (a
// revision, or a builtKey) and writes its marker; any earlier incomplete
// tree of that key is replaced.
func (s *Store) install(plug, key, tmp string, m *marker) error {
	dir := s.treeDir(plug, key)
	if err := makeReadOnly(tmp); err != nil {
		return err
	}
	_ = os.Remove(s.markerPath(plug, key))
	if err := removeTree(dir); err != nil {
		return err
	}
	// A whole tree renamed into place (a folder: internal/atomicfile is for
	// files); the marker written after it is what makes it complete.
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	// Neither the tree's files nor its marker get an fsync of their own
	// (at a converge of 100 new plugs, 100 fsyncs, each also writing the
	// folders above it on an ext4 without a journal, were a third of the
	// load). Sync flushes them all with one syncfs(2), before what names
	// them (a lock, a bundle's deployment) is written, or right after the
	// daemon's apply. A marker a crash left torn or empty is no marker:
	// the tree is fetched again (TestTornMarkerRefetched); a tree's file
	// a crash left torn fails its verification before a process runs in it.
	return s.writeMarker(plug, key, m)
}

// writeMarker writes the marker of plug's tree key, unsynced (see install).
func (s *Store) writeMarker(plug, key string, m *marker) error {
	s.cache.unsynced.Store(true)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(s.markerPath(plug, key), append(b, '\n'), 0o644, atomicfile.Fast)
}

// Sync flushes to disk the trees and markers installed by the Stores of
// its Cache since the last Sync (one syncfs(2) of the state directory's
// file system), and does nothing when none was. Fetch, Build and Unbundle
// call it before they return, unless FetchOptions.DeferSync.
func (s *Store) Sync() error { return s.cache.Sync(s.dir) }

// Sync is Store.Sync for the Stores of c, whose state directory is dir.
func (c *Cache) Sync(dir string) error {
	if !c.unsynced.Swap(false) {
		return nil
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = unix.Syncfs(fd)
		unix.Close(fd)
	}
	if err != nil {
		c.unsynced.Store(true)
		return fmt.Errorf("flush the plugin store to disk: %w", err)
	}
	return nil
}

// Unsynced reports whether a tree was installed since the last Sync.
func (c *Cache) Unsynced() bool { return c.unsynced.Load() }

// manifest returns the inline plugin block of p, or the manifest of the
// tree at dir, whose marker is m. A tree's manifest is read once per
// content: a tree's folder holds what its marker's hashes say (Runnable
// verifies it), and a new content comes with a new marker.
func (s *Store) manifest(p *spec.Plug, dir string, m *marker) (*spec.Manifest, error) {
	if p.Plugin != nil {
		return p.Plugin, nil
	}
	key := dir + "\x00" + m.Hash + "\x00" + m.BuiltHash
	s.mu.Lock()
	man, ok := s.manifests[key]
	s.mu.Unlock()
	if ok {
		return man, nil
	}
	man, err := s.opts.LoadManifest(dir)
	if err != nil {
		return nil, &inputError{fmt.Errorf("manifest: %w", err)}
	}
	s.mu.Lock()
	s.manifests[key] = man
	s.mu.Unlock()
	return man, nil
}

func needsBuild(m *spec.Manifest) bool { return m != nil && len(m.Build) > 0 }

// forEach runs fn for every plug, s.opts.Parallel at a time (errgroup's
// limit), and returns the errors joined in plug order. Once ctx is done,
// the plugs not yet begun fail with its error.
func (s *Store) forEach(ctx context.Context, plugs []*spec.Plug, fn func(ctx context.Context, i int, p *spec.Plug) error) error {
	errs := make([]error, len(plugs))
	var g errgroup.Group
	g.SetLimit(s.opts.Parallel)
	for i, p := range plugs {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				errs[i] = plugError(p.Name, err)
				return nil
			}
			errs[i] = plugError(p.Name, fn(ctx, i, p))
			return nil
		})
	}
	_ = g.Wait() // every fn returns nil: errs holds the errors
	return joinErrors(errs)
}

// joinErrors joins errors and keeps them input errors when all are.
func joinErrors(errs []error) error {
	var out []error
	input := true
	for _, e := range errs {
		if e != nil {
			out = append(out, e)
			input = input && IsInputError(e)
		}
	}
	switch {
	case len(out) == 0:
		return nil
	case len(out) == 1:
		return out[0]
	case input:
		return &inputError{errors.Join(out...)}
	}
	return errors.Join(out...)
}

func enabledPlugs(d *spec.Deployment) []*spec.Plug {
	var out []*spec.Plug
	for _, p := range d.Plugs {
		if p.Enabled {
			out = append(out, p)
		}
	}
	return out
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return !errors.Is(err, fs.ErrNotExist)
}
