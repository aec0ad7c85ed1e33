package fetch

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/plugs-dev/plugs/internal/atomicfile"
	"golang.org/x/mod/sumdb/dirhash"
)

// Tree hash algorithms, named by the prefix of a hash.
const (
	// hashH1 is golang.org/x/mod's dirhash Hash1 over the files' content
	// (a symlink as "symlink <target>"): the hash of locks written before
	// h2. It ignores the executable bit, so a tree whose only change is a
	// chmod +x hashes the same; it is still verified, never written anew.
	hashH1 = "h1:"
	// hashH2 is what plugs writes: like h1, with each file's kind (file,
	// exec for a file with any execute bit, link) on its summary line, so
	// that the executable bit is part of what identifies a tree.
	hashH2 = "h2:"
)

// hashDir returns the h2: hash of a plugin tree.
func hashDir(dir string) (string, error) { return hashDirAs(dir, hashH2) }

// hashAlgo is the algorithm of hash h (its prefix), h2 for anything else.
func hashAlgo(h string) string {
	if strings.HasPrefix(h, hashH1) {
		return hashH1
	}
	return hashH2
}

// hashDirAs returns the hash of a plugin tree with the algorithm algo
// (hashH1 or hashH2). Symlinks are hashed by their target (never followed);
// a ".git" folder at any depth is skipped; anything but folders, regular
// files and symlinks is refused.
func hashDirAs(dir, algo string) (string, error) {
	type entry struct {
		name, kind string
	}
	var files []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" && p != dir {
				return filepath.SkipDir
			}
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		kind := "file"
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			kind = "link"
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			if info.Mode()&0o111 != 0 {
				kind = "exec"
			}
		default:
			return fmt.Errorf("%s: unsupported file type %v", rel, d.Type())
		}
		if strings.ContainsAny(rel, "\n\r") {
			return fmt.Errorf("%q: file names with newlines are not supported", rel)
		}
		files = append(files, entry{rel, kind})
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	open := func(e entry) (io.ReadCloser, error) {
		if e.kind == "link" {
			t, err := os.Readlink(filepath.Join(dir, filepath.FromSlash(e.name)))
			if err != nil {
				return nil, err
			}
			return io.NopCloser(strings.NewReader("symlink " + t)), nil
		}
		return os.Open(filepath.Join(dir, filepath.FromSlash(e.name)))
	}
	if algo == hashH1 {
		names := make([]string, len(files))
		byName := make(map[string]entry, len(files))
		for i, e := range files {
			names[i], byName[e.name] = e.name, e
		}
		return dirhash.Hash1(names, func(name string) (io.ReadCloser, error) { return open(byName[name]) })
	}
	summary := sha256.New()
	for _, e := range files {
		r, err := open(e)
		if err != nil {
			return "", err
		}
		h := sha256.New()
		_, err = io.Copy(h, r)
		r.Close()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(summary, "%x  %s  %s\n", h.Sum(nil), e.kind, e.name)
	}
	return hashH2 + base64.StdEncoding.EncodeToString(summary.Sum(nil)), nil
}

// contentID turns an h1: or h2: hash into a filesystem-safe revision id (hex).
func contentID(h string) (string, error) {
	algo := hashAlgo(h)
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, algo))
	if err != nil || !strings.HasPrefix(h, algo) || len(b) != sha256.Size {
		return "", fmt.Errorf("invalid hash %q", h)
	}
	return hex.EncodeToString(b), nil
}

// copyTree copies src into dst (which must not exist), keeping executable
// bits and symlinks, skipping ".git" folders.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if d.Name() == ".git" && p != src {
				return filepath.SkipDir
			}
			return os.Mkdir(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(t, target)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return copyFile(p, target, info.Mode())
		default:
			return fmt.Errorf("%s: unsupported file type %v", rel, d.Type())
		}
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// makeReadOnly removes every write bit of a complete tree: a fetched or
// built tree is immutable.
func makeReadOnly(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, p) // folders last, after their files
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(p, info.Mode().Perm()&^0o222)
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i], 0o555); err != nil {
			return err
		}
	}
	return nil
}

// writeFileAtomic writes data to filename through a temporary file in the
// same folder, synced (internal/atomicfile): readers see the old content or
// the new, never a part.
func writeFileAtomic(filename string, data []byte, perm fs.FileMode) error {
	return atomicfile.Write(filename, data, perm, atomicfile.Durable)
}

// tempDir returns a fresh, not yet existing path in dir for a tree being made.
func tempName(dir, prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return filepath.Join(dir, prefix+hex.EncodeToString(b[:]))
}
