package fetch

import (
	"archive/tar"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/plugs-dev/plugs/internal/atomicfile"
	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/plugs-dev/plugs/internal/names"
	"github.com/plugs-dev/plugs/spec"
)

// Names inside a bundle.
const (
	bundleManifest   = "MANIFEST"
	bundleDeployment = "plugs.hcl"
	bundleLock       = layout.LockFileName
)

// bundleIndex is a bundle's MANIFEST: what every file must hash to, and each
// plug's tree.
type bundleIndex struct {
	Format int                   `json:"format"`
	Plugs  map[string]bundlePlug `json:"plugs"`
	Files  map[string]string     `json:"files"` // name -> "sha256:<hex>" or "symlink:<target>"
}

type bundlePlug struct {
	Source       string   `json:"source"`
	Version      string   `json:"version,omitempty"`
	Revision     string   `json:"revision"`
	Hash         string   `json:"hash"`
	Built        bool     `json:"built"`
	BuiltHash    string   `json:"built_hash,omitempty"`
	BuildCommand []string `json:"build_command,omitempty"`
	// Tree is the tree's folder under plugins/<plug>/ when it is not the
	// revision: the built tree of an inline build (see builtKey).
	Tree string `json:"tree,omitempty"`
}

// key is the plug's tree key in the bundle and the store.
func (bp bundlePlug) key() string { return cmp.Or(bp.Tree, bp.Revision) }

// WriteBundle builds every enabled plug (fetching as Build does; the caller
// writes the lock) and writes one .tar.gz to out: plugs.hcl, the lock, every
// runnable plugin tree under plugins/<plug>/<revision>/, and a MANIFEST with
// the sha256 of every file and each plug's hashes. out is written atomically.
func (s *Store) WriteBundle(ctx context.Context, out string, d *spec.Deployment, l *spec.Lock) error {
	trees, err := s.Build(ctx, d, l)
	if err != nil {
		return err
	}
	depl, err := spec.ReadRegularFile(d.Filename) // as it was parsed: never a FIFO
	if err != nil {
		return fmt.Errorf("read deployment: %w", err)
	}
	// 0600: plugs.hcl may hold literal secrets.
	f, err := atomicfile.Create(filepath.Dir(out), filepath.Base(out), 0o600, atomicfile.Durable)
	if err != nil {
		return err
	}
	defer f.Abort() // no-op once committed
	if err := s.writeBundle(ctx, f, trees, depl, l); err != nil {
		return err
	}
	return f.Commit(out)
}

// writeBundle writes the gzipped tar of a bundle to w.
func (s *Store) writeBundle(ctx context.Context, w io.Writer, trees []*Tree, depl []byte, l *spec.Lock) error {
	idx := &bundleIndex{Format: 1, Plugs: map[string]bundlePlug{}, Files: map[string]string{}}
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	bw := &bundleWriter{tw: tw, idx: idx}
	bw.bytes(bundleDeployment, depl)
	bw.bytes(bundleLock, FormatLock(l))
	bar := s.progress("bundle", len(trees))
	for _, t := range trees {
		if err := ctx.Err(); err != nil {
			bw.err = err
			break
		}
		key := filepath.Base(t.Dir)
		m, err := s.readMarker(t.Plug, key)
		if err != nil {
			bw.err = plugError(t.Plug, err)
			break
		}
		bp := bundlePlug{Source: m.Source, Version: m.Version, Revision: m.Revision, Hash: m.Hash,
			Built: m.Built, BuiltHash: m.BuiltHash, BuildCommand: m.BuildCommand}
		if key != m.Revision {
			bp.Tree = key
		}
		idx.Plugs[t.Plug] = bp
		if err := checkTreeLinks(t.Dir); err != nil {
			// Unbundle would refuse it: never write such a bundle.
			bw.err = plugError(t.Plug, &inputError{err})
			break
		}
		bw.tree(layout.BundlePluginTree(t.Plug, key), t.Dir)
		bar.step(t.Plug + " " + describeTree(t))
	}
	bar.finish()
	if bw.err == nil {
		b, err := json.MarshalIndent(idx, "", "  ")
		if err != nil {
			return err
		}
		bw.raw(bundleManifest, b)
	}
	if bw.err != nil {
		return bw.err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// bundleWriter writes tar entries with fixed metadata (a bundle of the same
// trees is the same bytes) and records each file in the index.
type bundleWriter struct {
	tw  *tar.Writer
	idx *bundleIndex
	err error
}

var bundleTime = time.Unix(0, 0).UTC()

func (w *bundleWriter) raw(name string, b []byte) {
	w.write(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: bundleTime}, strings.NewReader(string(b)))
}

func (w *bundleWriter) bytes(name string, b []byte) {
	sum := sha256.Sum256(b)
	w.idx.Files[name] = "sha256:" + hex.EncodeToString(sum[:])
	w.raw(name, b)
}

func (w *bundleWriter) write(h *tar.Header, r io.Reader) {
	if w.err != nil {
		return
	}
	if w.err = w.tw.WriteHeader(h); w.err != nil {
		return
	}
	if r != nil {
		_, w.err = io.Copy(w.tw, r)
	}
}

func (w *bundleWriter) tree(prefix, dir string) {
	if w.err != nil {
		return
	}
	w.err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			w.write(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: bundleTime}, nil)
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			w.idx.Files[name] = "symlink:" + t
			w.write(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: t, Mode: 0o777, ModTime: bundleTime}, nil)
		default:
			info, err := d.Info()
			if err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			h := sha256.New()
			mode := int64(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			w.write(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: info.Size(), ModTime: bundleTime}, io.TeeReader(f, h))
			w.idx.Files[name] = "sha256:" + hex.EncodeToString(h.Sum(nil))
		}
		return w.err
	})
}

// Unbundle verifies a bundle and unpacks it into stateDir without any
// network: each plugin tree into plugins/<plug>/<revision>/ (kept when
// already there), plugs.hcl and the lock into <stateDir>/bundle/. It returns
// the path of the unpacked plugs.hcl. A bundle with a file that does not
// match its MANIFEST, a missing or extra file, or a hostile entry is
// rejected before anything is installed.
func Unbundle(ctx context.Context, bundlePath, stateDir string) (string, error) {
	s := Open(stateDir, Options{})
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return "", err
	}
	// A FIFO or a device would block or never end: refuse it unopened.
	if err := checkSourceType(&source{kind: kindArchive, location: bundlePath}); err != nil {
		return "", fmt.Errorf("bundle: %w", err)
	}
	tmp := tempName(stateDir, ".unbundle-")
	if err := withContext(ctx, func() error { return ExtractFile(bundlePath, tmp, s.opts.Limits) }); err != nil {
		if ctx.Err() != nil {
			return "", err
		}
		return "", &inputError{fmt.Errorf("bundle: %w", err)}
	}
	defer removeTree(tmp)
	idx, err := verifyBundle(ctx, tmp)
	if err != nil {
		return "", &inputError{fmt.Errorf("bundle %s: %w", filepath.Base(bundlePath), err)}
	}
	names := make([]string, 0, len(idx.Plugs))
	for n := range idx.Plugs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		bp := idx.Plugs[n]
		if m, err := s.readMarker(n, bp.key()); err == nil && m.Hash == bp.Hash && m.Built == bp.Built && m.BuiltHash == bp.BuiltHash && slices.Equal(m.BuildCommand, bp.BuildCommand) {
			continue
		}
		if err := os.MkdirAll(s.plugDir(n), 0o755); err != nil {
			return "", err
		}
		m := &marker{Source: bp.Source, Version: bp.Version, Revision: bp.Revision, Hash: bp.Hash,
			Built: bp.Built, BuiltHash: bp.BuiltHash, BuildCommand: bp.BuildCommand}
		if err := s.install(n, bp.key(), layout.PluginTree(tmp, n, bp.key()), m); err != nil {
			return "", fmt.Errorf("plug %s: %w", n, err)
		}
	}
	// The trees are on disk before the deployment that names them.
	if err := s.Sync(); err != nil {
		return "", err
	}
	dst := filepath.Dir(UnbundledDeployment(stateDir))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", err
	}
	for _, name := range []string{bundleLock, bundleDeployment} {
		b, err := os.ReadFile(filepath.Join(tmp, name))
		if err != nil {
			return "", err
		}
		if err := writeFileAtomic(filepath.Join(dst, name), b, 0o644); err != nil {
			return "", err
		}
	}
	return UnbundledDeployment(stateDir), nil
}

// UnbundledDeployment is where Unbundle puts the plugs.hcl of the last
// bundle it verified and unpacked into stateDir (its lock beside it).
func UnbundledDeployment(stateDir string) string {
	return filepath.Join(stateDir, "bundle", bundleDeployment)
}

// verifyBundle checks an extracted bundle against its MANIFEST: every file
// listed and matching, nothing more, every plug tree hashing as recorded.
func verifyBundle(ctx context.Context, dir string) (*bundleIndex, error) {
	b, err := os.ReadFile(filepath.Join(dir, bundleManifest))
	if err != nil {
		return nil, fmt.Errorf("no %s: not a plugs bundle", bundleManifest)
	}
	var idx bundleIndex
	if err := json.Unmarshal(b, &idx); err != nil || idx.Format != 1 {
		return nil, fmt.Errorf("%s: unreadable or unknown format", bundleManifest)
	}
	seen := map[string]bool{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		name := filepath.ToSlash(rel)
		if name == bundleManifest {
			return nil
		}
		want, ok := idx.Files[name]
		if !ok {
			return fmt.Errorf("%s: not in %s", name, bundleManifest)
		}
		seen[name] = true
		var got string
		if d.Type()&fs.ModeSymlink != 0 {
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got = "symlink:" + t
		} else {
			sum, err := fileSHA256(p)
			if err != nil {
				return err
			}
			got = "sha256:" + sum
		}
		if got != want {
			return fmt.Errorf("%s: content does not match %s (tampered or corrupt)", name, bundleManifest)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for name := range idx.Files {
		if !seen[name] {
			return nil, fmt.Errorf("%s: listed in %s but missing", name, bundleManifest)
		}
	}
	for _, name := range []string{bundleDeployment, bundleLock} {
		if !seen[name] {
			return nil, fmt.Errorf("%s is missing", name)
		}
	}
	for n, bp := range idx.Plugs {
		if !validName(n) || !validName(bp.Revision) || !validName(bp.key()) {
			return nil, fmt.Errorf("invalid plug %q, revision %q or tree %q", n, bp.Revision, bp.Tree)
		}
		want := bp.Hash
		if bp.Built {
			want = bp.BuiltHash
		}
		got, err := hashDirAs(layout.PluginTree(dir, n, bp.key()), hashAlgo(want))
		if err != nil {
			return nil, fmt.Errorf("plug %s: %w", n, err)
		}
		if got != want {
			return nil, fmt.Errorf("plug %s: tree hash %s, expected %s", n, got, want)
		}
	}
	return &idx, nil
}

// validName reports whether s is safe as one path element.
func validName(s string) bool { return names.PathElement(s) }
