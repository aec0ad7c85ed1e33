package fetch

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// withContext runs fn, a step of blocking file system calls (a copy, a
// hash, an extraction of a local source), and returns when it is done or
// ctx ends, whichever is first: a source on a hung network mount cannot
// wedge plugs lock or the daemon beyond SIGINT. When ctx ends first, fn is
// left to finish (or stay blocked) on its own; its result is dropped.
func withContext(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkSourceType refuses a local source that is not a folder (kindDir) or
// a regular file (kindArchive) — a FIFO named x.zip, a device — without
// opening it: opening a FIFO blocks. A symlink is followed: the content of
// its target is what gets fetched.
func checkSourceType(src *source) error {
	st, err := os.Stat(src.location)
	if err != nil {
		return inputErrorf("source %s: %v", src.location, err)
	}
	switch {
	case src.kind == kindDir && !st.IsDir():
		return inputErrorf("source %s is not a folder (%s)", src.location, describeMode(st.Mode()))
	case src.kind == kindArchive && !st.Mode().IsRegular():
		return inputErrorf("source %s is not a regular file (%s): plugs reads archives from regular files only", src.location, describeMode(st.Mode()))
	}
	return nil
}

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m.IsRegular():
		return "a regular file"
	}
	return m.Type().String()
}

// materialize brings a non-git source into tmp: a copy of a local folder
// (of its target when it is a symlink), or the extracted content of a local
// or downloaded archive, whose sha256 is returned ("" for a folder). e is
// the lock entry whose archive sha256 a download must match (nil while
// resolving). Every step obeys ctx.
func (s *Store) materialize(ctx context.Context, p string, src *source, tmp string, e *pinned) (string, error) {
	if src.kind == kindRemoteArchive {
		file, sum, err := s.download(ctx, p, src, e)
		if err != nil {
			return "", err
		}
		return sum, withContext(ctx, func() error { return s.extractArchive(file, src, tmp) })
	}
	var sum string
	err := withContext(ctx, func() error {
		if err := checkSourceType(src); err != nil {
			return err
		}
		if src.kind == kindDir {
			root, err := filepath.EvalSymlinks(src.location)
			if err != nil {
				return inputErrorf("source folder %s: %v", src.location, err)
			}
			if err := copyTree(root, tmp); err != nil {
				_ = removeTree(tmp)
				return fmt.Errorf("copy %s: %w", src.location, err)
			}
			if err := checkTreeLinks(tmp); err != nil {
				_ = removeTree(tmp)
				return inputErrorf("source folder %s: %v", src.location, err)
			}
			return nil
		}
		var err error
		if sum, err = fileSHA256(src.location); err != nil {
			return inputErrorf("source archive: %v", err)
		}
		return s.extractArchive(src.location, src, tmp)
	})
	return sum, err
}

// pinned is what a lock entry pins of an archive source.
type pinned struct{ sha256 string }

// extractArchive extracts archive into tmp: the //subdir of src, else the
// archive's single top folder, else its root.
func (s *Store) extractArchive(archive string, src *source, tmp string) error {
	all := tmp + ".x"
	if err := ExtractFile(archive, all, s.opts.Limits); err != nil {
		return &inputError{err}
	}
	defer removeTree(all)
	root := all
	if src.subdir != "" {
		root = all + "/" + src.subdir
	} else if one := singleFolder(all); one != "" {
		root = one // an archive of one top folder: that folder is the plugin
	}
	st, err := os.Lstat(root)
	if err != nil || !st.IsDir() {
		return inputErrorf("no folder %q in %s", src.subdir, filepath.Base(archive))
	}
	if err := checkTreeLinks(root); err != nil {
		return inputErrorf("%s: %v", filepath.Base(archive), err)
	}
	return os.Rename(root, tmp) // a folder moved out of the extraction, not a file write
}

// checkTreeLinks applies to a plugin tree the rule Extract applies to a
// bundle: every symlink is relative, stays inside the tree (resolved, not
// only lexically) and points at something that exists. A tree that passes
// is one a bundle can carry and plugs run --bundle can unpack.
func checkTreeLinks(dir string) error {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		leaves := fmt.Errorf("symlink %s -> %s points outside the plugin folder: plugs copies only a plugin's own files; replace the link by what it points to", rel, target)
		if target == "" || path.IsAbs(target) || filepath.IsAbs(target) {
			return leaves
		}
		if t := path.Join(path.Dir(rel), filepath.ToSlash(target)); t == ".." || strings.HasPrefix(t, "../") {
			return leaves
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return fmt.Errorf("symlink %s -> %s points at nothing: remove it or add its target", rel, target)
		}
		if real != root && !strings.HasPrefix(real, root+string(filepath.Separator)) {
			return leaves
		}
		return nil
	})
}
