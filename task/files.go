package task

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/plugs-dev/plugs/internal/atomicfile"
)

// writeFileAtomic writes data to name through a temporary file in the same
// directory and a rename (internal/atomicfile), so that a reader, or a
// daemon restarted after a crash, finds the old content or the new, never a
// torn file.
func writeFileAtomic(name string, data []byte, perm os.FileMode, sync bool) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return atomicfile.Write(name, data, perm, atomicfile.Sync(sync))
}
