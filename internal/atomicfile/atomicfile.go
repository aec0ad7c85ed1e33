package atomicfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Sync says whether the data is synced to disk before the rename, so that
// the replacement also survives a crash of the machine.
type Sync bool

// The two choices of Sync.
const (
	Durable Sync = true  // fsync before the rename: for locks, markers, credentials
	Fast    Sync = false // no fsync: for state rewritten often and rebuilt on restart
)

// Write replaces name with data, mode perm.
func Write(name string, data []byte, perm fs.FileMode, sync Sync) error {
	return WriteFunc(name, perm, sync, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteFunc replaces name with what write writes, mode perm. Nothing is
// replaced when write fails.
func WriteFunc(name string, perm fs.FileMode, sync Sync, write func(io.Writer) error) error {
	f, err := Create(filepath.Dir(name), filepath.Base(name), perm, sync)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := write(f); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", name, err)
	}
	return f.Commit(name)
}

// File is a file being written to replace another, for a writer that
// streams (a download, an archive) or learns the final name only at the
// end (a content-addressed cache entry): a temporary file in the target's
// folder, renamed over the target by Commit. Abort removes it; so does a
// failed Commit.
type File struct {
	f    *os.File
	sync Sync
	done bool
}

// Create starts a file in dir that will replace a file of dir, mode perm
// from its creation; base names the temporary file ("."+base+".tmp-*").
func Create(dir, base string, perm fs.FileMode, sync Sync) (*File, error) {
	f, err := os.CreateTemp(dir, "."+base+".tmp-*") // mode 0600 from its creation
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &File{f: f, sync: sync}, nil
}

// Write writes to the temporary file.
func (f *File) Write(p []byte) (int, error) { return f.f.Write(p) }

// Commit syncs (when Durable) and closes the file, then renames it to name,
// which must be in the folder given to Create.
func (f *File) Commit(name string) error {
	if f.done {
		return fmt.Errorf("write %s: already committed or aborted", name)
	}
	f.done = true
	tmp := f.f.Name()
	fail := func(err error) error {
		f.f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if filepath.Dir(name) != filepath.Dir(tmp) {
		return fail(fmt.Errorf("not in the folder of %s", tmp))
	}
	if f.sync {
		if err := f.f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// Abort closes and removes the temporary file; after Commit it does nothing,
// so that it may be deferred.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.f.Close()
	os.Remove(f.f.Name())
}
