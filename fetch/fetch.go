package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plugs-dev/plugs/spec"
)

// FetchOptions tune Fetch.
type FetchOptions struct {
	// Frozen refuses a missing or stale lock entry instead of resolving it.
	Frozen bool
	// DeferVerify (FetchRunnable only) skips the check of each tree's
	// content against its marker (the walk of its metadata, a hash when it
	// changed): every other check is made. The caller verifies each tree,
	// with VerifyDirs or VerifyDir, before a process runs in it. The daemon
	// verifies the trees a reconcile starts processes in, not those of the
	// instances it leaves running (the runner verifies those at their next
	// start).
	DeferVerify bool
	// DeferSync leaves the trees this fetch installs unflushed: the caller
	// calls Store.Sync (or its Cache's) soon after. The daemon does, once
	// the reconcile's apply is done. Without it, the fetch syncs before it
	// returns.
	DeferSync bool
}

// Fetch brings the locked revision of every enabled plug into the store,
// verifying each tree against its lock hash. A revision already in the store
// or in a git mirror costs no network round trip. Without Frozen, a missing
// or stale entry of l (source or version changed in plugs.hcl, a local
// source whose content changed) is resolved and replaced in l, like
// `terraform init`; the caller writes the lock. With Frozen it is an error.
// Trees are returned in declaration order.
func (s *Store) Fetch(ctx context.Context, d *spec.Deployment, l *spec.Lock, opt FetchOptions) ([]*Tree, error) {
	return s.fetch(ctx, d, l, opt, false)
}

// FetchRunnable is Fetch followed by Runnable, in one pass over the plugs:
// the same trees, checks and errors (a plug's fetch error and another's
// refused tree are reported together), but each plug's marker is read and
// its tree described once, not once by each (at 1,000 plugs: 1,000
// goroutines, 4,000 stats and 1,000 marker lookups less a load).
func (s *Store) FetchRunnable(ctx context.Context, d *spec.Deployment, l *spec.Lock, opt FetchOptions) (map[string]*Tree, error) {
	trees, err := s.fetch(ctx, d, l, opt, true)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Tree, len(trees))
	for _, t := range trees {
		out[t.Plug] = t
	}
	return out, nil
}

// fetch is Fetch; with runnable, each tree is also checked as Runnable
// checks it.
func (s *Store) fetch(ctx context.Context, d *spec.Deployment, l *spec.Lock, opt FetchOptions, runnable bool) ([]*Tree, error) {
	if l == nil {
		return nil, inputErrorf("no lock: run plugs lock")
	}
	if l.Plugs == nil {
		l.Plugs = map[string]*spec.LockedPlug{}
	}
	plugs := enabledPlugs(d)
	trees := make([]*Tree, len(plugs))
	var lmu sync.Mutex
	var seen sourceHashes // a local source of several plugs is hashed once
	bar := s.progress("fetch", len(plugs))
	err := s.forEach(ctx, plugs, func(ctx context.Context, i int, p *spec.Plug) error {
		lmu.Lock()
		e := l.Plugs[p.Name]
		lmu.Unlock()
		start := time.Now()
		e, m, fetched, err := s.fetchOne(ctx, d, p, e, opt.Frozen, &seen)
		if err != nil {
			return err
		}
		if fetched && s.opts.OnFetched != nil {
			s.opts.OnFetched(p.Name, time.Since(start))
		}
		lmu.Lock()
		l.Plugs[p.Name] = e
		lmu.Unlock()
		t, err := s.tree(p, e, m)
		if err == nil && runnable {
			t, err = s.fetchedRunnable(p, e, m, t, !opt.DeferVerify)
		}
		if err != nil {
			return err
		}
		trees[i] = t
		if fetched {
			bar.step(fmt.Sprintf("%s %s", p.Name, describe(e)))
		} else {
			bar.skip() // in the store already: nothing to tell
		}
		return nil
	})
	bar.finish()
	if !opt.DeferSync {
		// What was installed, also when another plug failed.
		if serr := s.Sync(); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	if err != nil {
		return nil, err
	}
	return trees, nil
}

// staleReason says why a lock entry does not match its plug, or "".
func staleReason(p *spec.Plug, e *spec.LockedPlug) string {
	switch {
	case e == nil:
		return "not in plugs.lock.hcl"
	case e.Source != redact(p.Source):
		return fmt.Sprintf("source changed from %q", e.Source)
	case e.Constraint != p.Version:
		return fmt.Sprintf("version changed from %q to %q", e.Constraint, p.Version)
	case e.Revision == "" || e.Hash == "":
		return "lock entry has no revision or hash"
	case e.SHA256 == "" && isRemoteArchive(p.Source):
		return "lock entry has no sha256 of the archive"
	}
	return ""
}

// fetchOne brings plug p's tree in; fetched reports that it had to (the
// entry was resolved, or the tree was not in the store).
func (s *Store) fetchOne(ctx context.Context, d *spec.Deployment, p *spec.Plug, e *spec.LockedPlug, frozen bool, seen *sourceHashes) (_ *spec.LockedPlug, _ *marker, fetched bool, err error) {
	src, err := parseSource(p.Source, d.BaseDir)
	if err != nil {
		return nil, nil, false, err
	}
	if why := staleReason(p, e); why != "" {
		if frozen {
			return nil, nil, false, inputErrorf("%s; run plugs lock", why)
		}
		e, err = s.resolve(ctx, d, p)
		if err != nil {
			return nil, nil, false, err
		}
		fetched = true
	} else if src.kind != kindGit {
		if edited := editedLocalHash(e); edited != "" {
			if frozen {
				return nil, nil, false, inputErrorf("%s; run plugs lock to rewrite it", edited)
			}
			s.log.Warn("lock entry edited by hand: rewriting it from the content", "plug", p.Name, "problem", edited)
			e, err = s.resolve(ctx, d, p)
			if err != nil {
				return nil, nil, false, err
			}
			fetched = true
		} else if !frozen && src.kind != kindRemoteArchive {
			changed, err := s.localChanged(ctx, src, p.Name, e, seen)
			if err != nil {
				return nil, nil, false, err
			}
			if changed {
				s.log.Info("local source changed", "plug", p.Name, "source", src.location)
				e, err = s.resolve(ctx, d, p)
				if err != nil {
					return nil, nil, false, err
				}
				fetched = true
			}
		}
	}
	m, installed, err := s.ensureTree(ctx, p, src, e, nil)
	if err != nil {
		return nil, nil, false, err
	}
	if !frozen && hashAlgo(e.Hash) == hashH1 {
		if e, m, err = s.upgradeHash(ctx, d, p, src, e, m); err != nil {
			return nil, nil, false, err
		}
		fetched = true
	}
	return e, m, fetched || installed, nil
}

// editedLocalHash says what is wrong with the lock entry of a local source
// or an archive whose hash is not the one its revision was derived from
// (the revision of such a source is its content hash): "" when it is.
func editedLocalHash(e *spec.LockedPlug) string {
	if id, err := contentID(e.Hash); err != nil || id != e.Revision {
		return fmt.Sprintf("the hash %s in plugs.lock.hcl is not the hash of its revision %s (was it edited by hand?)", e.Hash, short(e.Revision))
	}
	return ""
}

// upgradeHash replaces the h1: hash of lock entry e (written before h2:,
// verified against the content by ensureTree) with the h2: hash of the same
// content, which also covers the executable bits. The resolved version and
// commit stay; a local source gets the revision of its new hash.
func (s *Store) upgradeHash(ctx context.Context, d *spec.Deployment, p *spec.Plug, src *source, e *spec.LockedPlug, m *marker) (*spec.LockedPlug, *marker, error) {
	old := e.Hash
	if src.kind != kindGit {
		ne, err := s.resolve(ctx, d, p)
		if err != nil {
			return nil, nil, err
		}
		nm, err := s.readMarker(p.Name, ne.Revision)
		if err != nil {
			return nil, nil, err
		}
		s.log.Warn("upgraded the lock hash from h1: to h2: (h2 also covers executable bits); commit plugs.lock.hcl", "plug", p.Name, "old", old, "new", ne.Hash)
		return ne, nm, nil
	}
	defer s.lockKey("tree:" + p.Name + "@" + e.Revision)()
	h, err := hashDir(s.treeDir(p.Name, e.Revision))
	if err != nil {
		return nil, nil, err
	}
	up := *e
	up.Hash = h
	nm := *m
	nm.Hash = h
	if !m.Built {
		nm.BuiltHash = ""
	}
	if err := s.writeMarker(p.Name, e.Revision, &nm); err != nil {
		return nil, nil, err
	}
	s.log.Warn("upgraded the lock hash from h1: to h2: (h2 also covers executable bits); commit plugs.lock.hcl", "plug", p.Name, "old", old, "new", h)
	return &up, &nm, nil
}

// localChanged reports whether a local folder or archive no longer holds the
// locked content (cheaply: an archive is compared by its sha256).
// seen holds the hashes of sources computed by the same Fetch.
func (s *Store) localChanged(ctx context.Context, src *source, plug string, e *spec.LockedPlug, seen *sourceHashes) (bool, error) {
	var changed bool
	err := withContext(ctx, func() error {
		if !exists(src.location) {
			return nil // gone: the store's tree is what the lock names
		}
		if err := checkSourceType(src); err != nil {
			return err
		}
		if src.kind == kindArchive {
			m, err := s.readMarker(plug, e.Revision)
			sum, serr := seen.do("sha256\x00"+src.location, func() (string, error) { return fileSHA256(src.location) })
			changed = err != nil || serr != nil || m.Archive != sum
			return nil
		}
		h, err := seen.do(hashAlgo(e.Hash)+"\x00"+src.location, func() (string, error) { return s.hashTree(src.location, e.Hash) })
		changed = err != nil || h != e.Hash
		return nil
	})
	return changed, err
}

// sourceHashes are the hashes of local sources one Fetch computed, by
// algorithm and path: plugs of the same source folder or archive (one
// plugin, many plugs) have it read once.
type sourceHashes struct {
	mu sync.Mutex
	m  map[string]*sourceHash
}

type sourceHash struct {
	once sync.Once
	h    string
	err  error
}

// do returns the hash of key, computing it with hash the first time.
func (c *sourceHashes) do(key string, hash func() (string, error)) (string, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*sourceHash{}
	}
	e := c.m[key]
	if e == nil {
		e = &sourceHash{}
		c.m[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.h, e.err = hash() })
	return e.h, e.err
}

// ensureTree makes sure the store holds plug p at the locked revision e,
// fetching into the mirror only when the revision is not there; installed
// reports that it was not. An entry without a hash (being resolved) takes
// the hash of what was fetched. The hash of a new tree is computed from its
// content before it is installed read-only with its marker; a tree already
// there is trusted by its marker here, and verified by Runnable.
//
// have is a tree resolve has just materialized and hashed (nil: none): it
// is installed instead of materializing the source again, and removed when
// the store holds the revision already.
func (s *Store) ensureTree(ctx context.Context, p *spec.Plug, src *source, e *spec.LockedPlug, have *materialized) (_ *marker, installed bool, _ error) {
	defer s.lockKey("tree:" + p.Name + "@" + e.Revision)()
	if m, err := s.readMarker(p.Name, e.Revision); err == nil {
		if have != nil {
			_ = removeTree(have.dir)
		}
		if e.Hash != "" && m.Hash != e.Hash {
			return nil, false, mismatch(p.Name, e, m.Hash)
		}
		return m, false, nil
	}
	var tmp string
	if have != nil {
		tmp = have.dir
	} else {
		if err := os.MkdirAll(s.plugDir(p.Name), 0o755); err != nil {
			return nil, false, err
		}
		tmp = tempName(s.plugDir(p.Name), ".fetch-")
	}
	m := &marker{Source: redact(p.Source), Version: e.Version, Revision: e.Revision}
	switch {
	case have != nil:
		m.Archive = have.archive
	case src.kind == kindGit:
		if !fullHashRE.MatchString(e.Revision) {
			return nil, false, inputErrorf("lock revision %q is not a commit id; run plugs lock -update %s", e.Revision, p.Name)
		}
		unlock := s.lockKey("git:" + src.location)
		repo, err := s.ensureCommit(ctx, src, plumbingHash(e.Revision))
		if err == nil {
			err = checkoutTree(repo, src, plumbingHash(e.Revision), tmp, s.opts.Limits)
		}
		unlock()
		if err == nil {
			if lerr := checkTreeLinks(tmp); lerr != nil {
				err = inputErrorf("%s at %s: %v", redact(src.String()), short(e.Revision), lerr)
			}
		}
		if err != nil {
			_ = removeTree(tmp)
			return nil, false, err
		}
	default:
		sum, err := s.materialize(ctx, p.Name, src, tmp, &pinned{sha256: e.SHA256})
		if err != nil {
			_ = removeTree(tmp)
			return nil, false, err
		}
		m.Archive = sum
	}
	var h string
	var err error
	if have != nil && hashAlgo(have.hash) == hashAlgo(e.Hash) {
		h = have.hash
	} else if h, err = hashDirAs(tmp, hashAlgo(e.Hash)); err != nil {
		_ = removeTree(tmp)
		return nil, false, err
	}
	if e.Hash != "" && h != e.Hash {
		_ = removeTree(tmp)
		return nil, false, mismatch(p.Name, e, h)
	}
	if src.kind != kindGit {
		if id, _ := contentID(h); id != e.Revision {
			_ = removeTree(tmp)
			return nil, false, mismatch(p.Name, e, h)
		}
	}
	m.Hash = h
	if err := s.install(p.Name, e.Revision, tmp, m); err != nil {
		_ = removeTree(tmp)
		return nil, false, err
	}
	s.log.Info("fetched", "plug", p.Name, "version", e.Version, "revision", e.Revision)
	return m, true, nil
}

// materialized is a tree resolve brought into a temporary folder of the
// store and hashed, for ensureTree to install.
type materialized struct {
	dir     string // the temporary folder, in the plug's folder of the store
	archive string // the sha256 of an archive source, "" for a folder
	hash    string // of the tree, as resolve put it in the lock entry
}

func mismatch(plug string, e *spec.LockedPlug, actual string) error {
	return inputErrorf("hash mismatch at revision %s: plugs.lock.hcl has %s, the content has %s; if the change is expected, run plugs lock -update %s",
		short(e.Revision), e.Hash, actual, plug)
}

// singleFolder returns the only entry of dir when it is a folder and dir
// holds no manifest, else "".
func singleFolder(dir string) string {
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 || !ents[0].IsDir() {
		return ""
	}
	return dir + "/" + ents[0].Name()
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// resolve resolves plug p afresh (listing the remote's refs for git) and
// brings its tree into the store.
func (s *Store) resolve(ctx context.Context, d *spec.Deployment, p *spec.Plug) (*spec.LockedPlug, error) {
	src, err := parseSource(p.Source, d.BaseDir)
	if err != nil {
		return nil, err
	}
	e := &spec.LockedPlug{Name: p.Name, Source: redact(p.Source), Constraint: p.Version}
	if src.kind == kindGit {
		refs, err := s.listRefs(ctx, src)
		if err != nil {
			return nil, err
		}
		res, err := s.resolveRef(ctx, src, refs, p.Version)
		if err != nil {
			return nil, err
		}
		e.Version, e.Revision = res.Version, res.Commit.String()
		m, _, err := s.ensureTree(ctx, p, src, e, nil)
		if err != nil {
			return nil, err
		}
		e.Hash = m.Hash
	} else {
		if err := os.MkdirAll(s.plugDir(p.Name), 0o755); err != nil {
			return nil, err
		}
		// Materialized once: the copy that was hashed is the one installed.
		tmp := tempName(s.plugDir(p.Name), ".fetch-")
		sum, err := s.materialize(ctx, p.Name, src, tmp, nil)
		if err != nil {
			_ = removeTree(tmp)
			return nil, err
		}
		if src.kind == kindRemoteArchive {
			e.SHA256 = sum
		}
		h, err := hashDir(tmp)
		if err != nil {
			_ = removeTree(tmp)
			return nil, err
		}
		e.Hash = h
		if e.Revision, err = contentID(h); err != nil {
			_ = removeTree(tmp)
			return nil, err
		}
		if _, _, err := s.ensureTree(ctx, p, src, e, &materialized{dir: tmp, archive: sum, hash: h}); err != nil {
			return nil, err
		}
	}
	s.log.Info("resolved", "plug", p.Name, "version", e.Version, "revision", e.Revision)
	return e, nil
}

// tree describes plug p's tree in the store; m is the marker of its
// revision's tree. A plug with an inline build is Built when the tree of
// its current build command (builtKey) is there, and its Dir is then that
// tree; an unbuilt tree's Dir is the fetched source.
func (s *Store) tree(p *spec.Plug, e *spec.LockedPlug, m *marker) (*Tree, error) {
	t := &Tree{
		Plug: p.Name, Dir: s.treeDir(p.Name, e.Revision), Source: redact(p.Source), Version: e.Version,
		Revision: e.Revision, Hash: e.Hash,
	}
	if key := builtKey(p, e.Revision); key != "" {
		t.Manifest = p.Plugin
		if bm, err := s.readMarker(p.Name, key); err == nil && bm.Built && bm.Hash == e.Hash && slices.Equal(bm.BuildCommand, p.Plugin.Build) {
			t.Dir, t.Built = s.treeDir(p.Name, key), true
		}
		return t, nil
	}
	man, err := s.manifest(p, t.Dir, m)
	if err != nil {
		return nil, err
	}
	t.Manifest = man
	needs := needsBuild(man) || depsOf(t.Dir, man).any()
	t.Built = !needs || (m.Built && (m.BuildCommand == nil || slices.Equal(m.BuildCommand, man.Build)))
	return t, nil
}

// describe names the resolved version and revision in messages.
func describe(e *spec.LockedPlug) string {
	if e.Version != "" {
		return fmt.Sprintf("%s (%s)", e.Version, short(e.Revision))
	}
	return short(e.Revision)
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// Runnable returns the runnable tree of every enabled plug, without network
// and without building: each must be locked, fetched, built (with its
// current build command) when its manifest has a build, and unmodified.
//
// "Unmodified" is verified from content, not trusted: the first time a
// Store sees a tree (a daemon's start), its content is hashed and compared
// with the hash of its marker (the lock's hash, or the build's); later
// calls hash it again only when the tree's fingerprint (name, size, inode,
// mtime and ctime of every file, see hashTree) changed since it last
// matched. A tree whose content does not match is never returned.
//
// The plugs are checked Options.Parallel at a time: each check is a few
// system calls (stat of the marker, a walk of the tree's metadata), which
// overlap.
func (s *Store) Runnable(d *spec.Deployment, l *spec.Lock) (map[string]*Tree, error) {
	plugs := enabledPlugs(d)
	trees := make([]*Tree, len(plugs))
	err := s.forEach(context.Background(), plugs, func(_ context.Context, i int, p *spec.Plug) (err error) {
		trees[i], err = s.runnable(p, l)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Tree, len(plugs))
	for i, p := range plugs {
		out[p.Name] = trees[i]
	}
	return out, nil
}

func (s *Store) runnable(p *spec.Plug, l *spec.Lock) (*Tree, error) {
	return s.runnableOf(p, l, true)
}

// runnableOf is runnable; without verify, the tree's content is not
// checked (FetchOptions.DeferVerify).
func (s *Store) runnableOf(p *spec.Plug, l *spec.Lock, verify bool) (*Tree, error) {
	var e *spec.LockedPlug
	if l != nil {
		e = l.Plugs[p.Name]
	}
	if why := staleReason(p, e); why != "" {
		return nil, inputErrorf("%s; run plugs lock", why)
	}
	key := e.Revision
	if k := builtKey(p, e.Revision); k != "" {
		key = k
	}
	m, err := s.readMarker(p.Name, key)
	if err != nil {
		if _, serr := s.readMarker(p.Name, e.Revision); key != e.Revision && serr == nil {
			return nil, inputErrorf("not built with build command %q; run plugs build", strings.Join(p.Plugin.Build, " "))
		}
		return nil, inputErrorf("revision %s is not fetched; run plugs fetch", describe(e))
	}
	if m.Hash != e.Hash {
		return nil, mismatch(p.Name, e, m.Hash)
	}
	t, err := s.tree(p, e, m)
	if err != nil {
		return nil, err
	}
	return s.checkRunnable(t, m, verify)
}

// fetchedRunnable is runnable for a plug Fetch has just brought in: e is
// its entry (fresh), m the marker of its revision and t its tree, as
// Fetch found them. A plug with an inline build has a marker of its own
// for the built tree: it is checked as runnable checks it.
func (s *Store) fetchedRunnable(p *spec.Plug, e *spec.LockedPlug, m *marker, t *Tree, verify bool) (*Tree, error) {
	if builtKey(p, e.Revision) != "" {
		return s.runnableOf(p, &spec.Lock{Plugs: map[string]*spec.LockedPlug{p.Name: e}}, verify)
	}
	if m.Hash != e.Hash {
		return nil, mismatch(p.Name, e, m.Hash)
	}
	return s.checkRunnable(t, m, verify)
}

// checkRunnable returns t if it is built and, with verify, its content is
// the one its marker m records.
func (s *Store) checkRunnable(t *Tree, m *marker, verify bool) (*Tree, error) {
	if !t.Built {
		return nil, inputErrorf("not built; run plugs build")
	}
	if !verify {
		return t, nil
	}
	want := m.Hash
	if m.Built {
		want = m.BuiltHash
	}
	got, err := s.hashTree(t.Dir, want)
	if err != nil {
		return nil, err
	}
	if got != want {
		return nil, inputErrorf("tree %s was modified: expected %s, actual %s; remove it and run plugs fetch", t.Dir, want, got)
	}
	return t, nil
}
