package fetch

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Default extraction limits: an archive that unpacks to more is refused.
const (
	DefaultMaxArchiveBytes = 1 << 30 // 1 GiB
	DefaultMaxArchiveFiles = 100_000
)

// ExtractLimits caps what one archive may unpack to. Zero fields take the defaults.
type ExtractLimits struct {
	MaxBytes int64 // total bytes of file content
	MaxFiles int   // entries of any kind
}

func (l ExtractLimits) withDefaults() ExtractLimits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxArchiveBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxArchiveFiles
	}
	return l
}

// ExtractFile unpacks a .zip (or .fp), .tar.gz, .tgz or .tar archive into dst,
// which must not exist yet. The archive is treated as hostile (see Extract).
// On error dst is removed: nothing half-extracted is left behind.
func ExtractFile(archive, dst string, lim ExtractLimits) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := Extract(f, st.Size(), dst, lim); err != nil {
		return fmt.Errorf("extract %s: %w", filepath.Base(archive), err)
	}
	return nil
}

// Extract unpacks a zip, gzip-compressed tar or plain tar archive (detected
// from its first bytes) into dst, which must not exist yet. It rejects
// absolute paths, "..", hardlinks, device and fifo files, duplicate entries,
// symlinks that resolve outside dst, writes through symlinks, and archives
// over lim; it never writes outside dst, and removes dst on error.
func Extract(r io.ReaderAt, size int64, dst string, lim ExtractLimits) (err error) {
	if err := os.Mkdir(dst, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = removeTree(dst)
		}
	}()
	x := &extractor{dst: dst, lim: lim.withDefaults(), seen: map[string]bool{}}
	head := make([]byte, 4)
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		err = x.zip(r, size)
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		var gz *gzip.Reader
		gz, err = gzip.NewReader(bufio.NewReader(io.NewSectionReader(r, 0, size)))
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		err = x.tar(gz)
	default:
		err = x.tar(io.NewSectionReader(r, 0, size))
	}
	if err != nil {
		return err
	}
	return x.checkSymlinks()
}

type extractor struct {
	dst      string
	lim      ExtractLimits
	seen     map[string]bool
	files    int
	bytes    int64
	symlinks []string
}

func (x *extractor) tar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("tar: %w", err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = x.dir(h.Name)
		case tar.TypeReg, tar.TypeRegA:
			err = x.file(h.Name, h.FileInfo().Mode(), tr)
		case tar.TypeSymlink:
			err = x.symlink(h.Name, h.Linkname)
		case tar.TypeLink:
			err = fmt.Errorf("%s: hardlinks are not allowed", h.Name)
		case tar.TypeXGlobalHeader:
			continue
		default:
			err = fmt.Errorf("%s: file type %q is not allowed", h.Name, string(h.Typeflag))
		}
		if err != nil {
			return err
		}
	}
}

func (x *extractor) zip(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	for _, f := range zr.File {
		mode := f.Mode()
		switch {
		case mode.IsDir():
			err = x.dir(f.Name)
		case mode.Type() == fs.ModeSymlink:
			err = x.zipSymlink(f)
		case mode.IsRegular():
			err = x.zipFile(f)
		default:
			err = fmt.Errorf("%s: file type %v is not allowed", f.Name, mode.Type())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) zipFile(f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	defer rc.Close()
	return x.file(f.Name, f.Mode(), rc)
}

func (x *extractor) zipSymlink(f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	defer rc.Close()
	target, err := io.ReadAll(io.LimitReader(rc, 4096))
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name, err)
	}
	return x.symlink(f.Name, string(target))
}

// entry validates an entry name and counts it; it returns the cleaned
// slash path, or "" for the archive root itself.
func (x *extractor) entry(name string) (string, error) {
	if strings.ContainsAny(name, "\x00\\") {
		return "", fmt.Errorf("%q: invalid character in name", name)
	}
	if strings.HasPrefix(name, "/") || filepath.IsAbs(name) {
		return "", fmt.Errorf("%s: absolute paths are not allowed", name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", fmt.Errorf("%s: \"..\" is not allowed", name)
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", nil
	}
	if x.seen[clean] {
		return "", fmt.Errorf("%s: duplicate entry", name)
	}
	x.seen[clean] = true
	x.files++
	if x.files > x.lim.MaxFiles {
		return "", fmt.Errorf("more than %d entries", x.lim.MaxFiles)
	}
	return clean, nil
}

// parent makes the parent folders of rel as real folders; an existing
// symlink among them is refused, so that nothing is written through one.
func (x *extractor) parent(rel string) error {
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	cur := x.dst
	for _, el := range strings.Split(dir, "/") {
		cur = filepath.Join(cur, el)
		st, err := os.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(cur, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case !st.IsDir():
			return fmt.Errorf("%s: parent %s is not a folder", rel, el)
		}
	}
	return nil
}

func (x *extractor) dir(name string) error {
	rel, err := x.entry(name)
	if err != nil || rel == "" {
		return err
	}
	if err := x.parent(rel); err != nil {
		return err
	}
	p := filepath.Join(x.dst, filepath.FromSlash(rel))
	st, err := os.Lstat(p)
	if err == nil {
		if st.IsDir() {
			return nil
		}
		return fmt.Errorf("%s: duplicate entry", name)
	}
	return os.Mkdir(p, 0o755)
}

func (x *extractor) file(name string, mode fs.FileMode, r io.Reader) error {
	rel, err := x.entry(name)
	if err != nil {
		return err
	}
	if rel == "" {
		return fmt.Errorf("%q: not a file name", name)
	}
	if err := x.parent(rel); err != nil {
		return err
	}
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	f, err := os.OpenFile(filepath.Join(x.dst, filepath.FromSlash(rel)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	left := x.lim.MaxBytes - x.bytes
	n, err := io.Copy(f, io.LimitReader(r, left+1))
	x.bytes += n
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if n > left {
		return fmt.Errorf("content larger than %d bytes", x.lim.MaxBytes)
	}
	return nil
}

func (x *extractor) symlink(name, target string) error {
	rel, err := x.entry(name)
	if err != nil {
		return err
	}
	if rel == "" {
		return fmt.Errorf("%q: not a link name", name)
	}
	if target == "" || strings.ContainsRune(target, 0) || path.IsAbs(target) || filepath.IsAbs(target) {
		return fmt.Errorf("%s: symlink to %q leaves the archive", name, target)
	}
	if t := path.Join(path.Dir(rel), target); t == ".." || strings.HasPrefix(t, "../") {
		return fmt.Errorf("%s: symlink to %q leaves the archive", name, target)
	}
	if err := x.parent(rel); err != nil {
		return err
	}
	if err := os.Symlink(target, filepath.Join(x.dst, filepath.FromSlash(rel))); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	x.symlinks = append(x.symlinks, rel)
	return nil
}

// checkSymlinks resolves every extracted symlink once the whole tree exists:
// a chain of links that passes the lexical check one by one can still leave
// dst, and only the resolved path tells.
func (x *extractor) checkSymlinks() error {
	if len(x.symlinks) == 0 {
		return nil
	}
	root, err := filepath.EvalSymlinks(x.dst)
	if err != nil {
		return err
	}
	for _, rel := range x.symlinks {
		p := filepath.Join(x.dst, filepath.FromSlash(rel))
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return fmt.Errorf("%s: symlink target does not exist in the archive", rel)
		}
		if real != root && !strings.HasPrefix(real, root+string(filepath.Separator)) {
			return fmt.Errorf("%s: symlink leaves the archive", rel)
		}
	}
	return nil
}

// removeTree removes a tree that may hold read-only folders.
func removeTree(dir string) error {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
