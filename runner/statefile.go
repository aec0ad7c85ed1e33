package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/plugs-dev/plugs/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// InstanceFile is the content of <state>/instances/<plug>/<instance>/instance.json.
// It is rewritten on every state a process can be found in (running,
// backoff, stopping, stopped, failed); "starting", which lasts only until
// the fork returns, is reported to observers alone. Each write swaps in
// a whole new file (writeSwapped), not synced to disk.
type InstanceFile struct {
	UUID     string `json:"uuid,omitempty"`
	Plug     string `json:"plug"`
	Instance string `json:"instance"`
	Version  string `json:"version,omitempty"`
	Revision string `json:"revision,omitempty"`
	// The plugin's own identity, from its manifest.
	PluginUUID    string    `json:"plugin_uuid,omitempty"`
	PluginName    string    `json:"plugin_name,omitempty"`
	PluginVersion string    `json:"plugin_version,omitempty"`
	Description   string    `json:"description,omitempty"`
	PID           int       `json:"pid,omitempty"`
	PIDStartTime  uint64    `json:"pid_start_time,omitempty"` // /proc/<pid>/stat field 22
	State         string    `json:"state"`
	Reason        string    `json:"reason,omitempty"`
	Since         time.Time `json:"since"`
	StartedAt     time.Time `json:"started_at,omitzero"`
	Restarts      int       `json:"restarts"`
	ConfigHash    string    `json:"config_hash,omitempty"`
	LastExit      *ExitFile `json:"last_exit,omitempty"`
}

// ExitFile is how the last process of an instance ended.
type ExitFile struct {
	Code   int       `json:"code"`
	Signal string    `json:"signal,omitempty"`
	At     time.Time `json:"at"`
	// OOMKilled: killed at its cgroup memory limit (sandbox.go).
	OOMKilled bool `json:"oom_killed,omitempty"`
}

// ReadInstanceFile reads and parses an instance.json.
func ReadInstanceFile(name string) (*InstanceFile, error) {
	// writeSwapped overwrites the file a reader may still hold open (the
	// twin of the last swap): a read that raced a write shows as a file
	// that no longer is the one at name, or as JSON that does not parse.
	// Such a read is read again. A live daemon makes a few writes of one
	// instance's state in a row, but a reader descheduled on a loaded host
	// can see many more go by (8 in a row did in a test under load), and a
	// retry costs one small read.
	var err error
	for range maxTornReads {
		var f *InstanceFile
		var moved bool
		f, moved, err = readInstanceFileOnce(name)
		if err == nil && !moved {
			return f, nil
		}
		if errors.Is(err, fs.ErrNotExist) || isPlanted(err) {
			return nil, err // not a torn read: reading again changes nothing
		}
	}
	if err == nil {
		err = fmt.Errorf("read %s: rewritten during every read", name)
	}
	return nil, err
}

// maxTornReads bounds ReadInstanceFile's retries.
const maxTornReads = 64

// maxInstanceFileBytes bounds the instance.json read: the daemon writes
// well under a KiB.
const maxInstanceFileBytes = 64 << 10

// readInstanceFileOnce reads and parses name once; moved reports that name
// was swapped while it was read.
//
// The instance's user may have put anything at name (openfile.go): a
// symlink, a FIFO, a file of its own with the pids of other processes in
// it (the next daemon kills what instance.json names). Only a regular file
// of the daemon's user is read, and at most maxInstanceFileBytes of it.
func readInstanceFileOnce(name string) (*InstanceFile, bool, error) {
	fh, err := openRegular(name, os.O_RDONLY, 0, true)
	if err != nil {
		if isPlanted(err) {
			return nil, false, fmt.Errorf("read instance state: %w", err)
		}
		return nil, false, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxInstanceFileBytes+1))
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > maxInstanceFileBytes {
		return nil, false, fmt.Errorf("read %s: larger than %d bytes", name, maxInstanceFileBytes)
	}
	held, herr := fh.Stat()
	now, nerr := os.Lstat(name)
	moved := herr != nil || nerr != nil || !os.SameFile(held, now)
	var f InstanceFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, moved, fmt.Errorf("parse %s: %w", name, err)
	}
	return &f, moved, nil
}

// writeFileAtomic writes data to name through a temporary file in the same
// directory, synced before the rename, so that a reader (or a restart after
// a crash) sees the old content or the new, never a torn file.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	return replaceFile(name, data, perm, true)
}

// twinSuffix names the file beside instance.json that writeSwapped writes
// and swaps in: it holds the state before the last write.
const twinSuffix = ".next"

// writeSwapped replaces name with data for readers atomically, like a
// rename of a temporary file, without creating a file per write: data
// goes into the twin "."+base(name)+".next" (created on the first writes
// only), which renameat2(RENAME_EXCHANGE) then swaps with name, leaving
// the previous content in the twin for the next write to overwrite.
// Creating and renaming over a file costs 10–20 times more on ext4 (the
// inode, and the flush that auto_da_alloc starts on a rename over a
// file): per state change of 1,000 instances, most of a stop. It is not
// synced: instance.json is the state of live processes, which a crash of
// the machine ends, and CleanupStale verifies every pid it names.
//
// later, when not nil, takes the creation of the next write's twin after
// a first write, to run it off the caller's path (housekeeper.add).
func writeSwapped(name string, data []byte, perm os.FileMode, later func(func())) error {
	twin := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+twinSuffix)
	// Overwritten, then cut to length: a truncation to zero would make
	// ext4 flush the file on close (auto_da_alloc again). The twin is in
	// a folder of the instance's user: never written through a symlink,
	// never waited on as a FIFO; what was planted in its place is
	// replaced (createRegularFd), reported in the error returned after
	// the write.
	fd, planted, err := createRegularFd(twin, os.O_WRONLY, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := writeTwin(fd, data); err != nil {
		unix.Close(fd)
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if planted != nil {
		planted = fmt.Errorf("write %s: %w", name, planted)
	}
	if unix.Renameat2(unix.AT_FDCWD, twin, unix.AT_FDCWD, name, unix.RENAME_EXCHANGE) == nil {
		return planted
	}
	// The first write (no name yet), or a file system without
	// RENAME_EXCHANGE: a plain rename. The twin of the next write is
	// created now (or by the caller later: makeTwin), so that the writes
	// of a stop create no file.
	if err := os.Rename(twin, name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if later == nil {
		makeTwin(name, perm)
	} else {
		later(func() { makeTwin(name, perm) })
	}
	return planted
}

// writeTwin writes data over the start of the open twin fd and cuts it to
// its length.
func writeTwin(fd int, data []byte) error {
	for off := 0; off < len(data); {
		n, err := unix.Pwrite(fd, data[off:], int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		off += n
	}
	for {
		err := unix.Ftruncate(fd, int64(len(data)))
		if err != unix.EINTR {
			return err
		}
	}
}

// makeTwin creates the empty twin of name that writeSwapped swaps in,
// unless something is there (O_EXCL: what was planted is left for the
// next write to replace).
func makeTwin(name string, perm os.FileMode) {
	twin := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+twinSuffix)
	if fd, err := openRegularFd(twin, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm, true); err == nil {
		unix.Close(fd)
	}
}

// writeConfigFile writes an instance's config.json, unless it already holds
// data with mode perm (a restart of an unchanged instance). The rename makes
// it atomic for the process that reads it; it is not synced, because it is
// derived: the runner renders it again before every process it starts, so
// a file lost or torn by a crash of the machine is never read, only
// rewritten (the byte comparison sees the difference).
func writeConfigFile(name string, data []byte, perm os.FileMode) error {
	_, err := writeConfig(name, data, perm)
	return err
}

// writeConfig is writeConfigFile; planted, when not nil, is a file that
// was not a regular one (a symlink, a FIFO: openfile.go), refused unread
// and replaced by the rename: the write succeeded.
func writeConfig(name string, data []byte, perm os.FileMode) (planted, err error) {
	same, planted := sameFile(name, data, perm)
	if same {
		return nil, nil
	}
	if err := replaceFile(name, data, perm, false); err != nil {
		return nil, err
	}
	var p *plantedError
	if errors.As(planted, &p) {
		p.Replaced = true
		return fmt.Errorf("write config: %w", p), nil
	}
	return nil, nil
}

// sameFile reports whether name is a regular file with mode perm holding
// exactly data. It is in the instance's folder, which the sandbox gives to
// the instance's user, as it does config.json itself: it is read by the
// rule of openfile.go, without owned; planted is what that refused.
func sameFile(name string, data []byte, perm os.FileMode) (same bool, planted error) {
	f, err := openRegular(name, os.O_RDONLY, 0, false)
	if err != nil {
		if isPlanted(err) {
			return false, err
		}
		return false, nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != perm || fi.Size() != int64(len(data)) {
		return false, nil
	}
	old := make([]byte, len(data)+1) // one more: a file that grew meanwhile differs
	n, err := io.ReadFull(f, old)
	// ReadFull says io.EOF, not ErrUnexpectedEOF, when it read nothing:
	// the file, like data, is empty.
	return (err == io.ErrUnexpectedEOF || err == io.EOF) && bytes.Equal(old[:n], data), nil
}

// replaceFile writes data to name through a temporary file in the same
// directory and a rename: readers see the old content or the new, never a
// torn file. With durable, the data is synced before the rename, so that
// the same holds after a crash of the machine. The rule is
// internal/atomicfile's.
func replaceFile(name string, data []byte, perm os.FileMode, durable bool) error {
	return atomicfile.Write(name, data, perm, atomicfile.Sync(durable))
}

// writeInstanceFile writes f to name (writeSwapped; later as there).
func writeInstanceFile(name string, f *InstanceFile, later func(func())) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return writeSwapped(name, append(b, '\n'), 0o600, later)
}
