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
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*") // mode 0600 from its creation
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if err := write(f); err != nil {
		return fail(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp, name); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
