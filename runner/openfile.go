package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The files of an instance's folder (config.json, instance.json and its
// twin, output.log and its backups) are in a folder the sandbox gives to
// the instance's user, who can put anything in their place: a symlink to
// a file of root's, a FIFO, a hard link. The daemon opens them only
// through openRegular and createRegular, whose rule is spec.ReadRegularFile's
// (a regular file, looked at before it is read, never an open that blocks)
// with what a folder of another user's needs on top:
//
//   - never through a symlink (O_NOFOLLOW): a write through one overwrites
//     the file it names, a read through one shows it (plugs logs);
//   - O_NONBLOCK, so that a FIFO's open returns at once (or fails with
//     ENXIO), cleared once the file is known to be regular;
//   - a regular file with one link: a hard link to a file of root's is
//     refused like a symlink;
//   - with owned, a file of the daemon's own user: a file the instance's
//     user made is not trusted (instance.json names the pids the next
//     daemon kills).
//
// A reader refuses anything else; a writer (createRegular) removes it and
// creates a new file in its place, exclusively, so that state keeps being
// written and nothing is written through what was planted.

// plantedError is a file of an instance's folder that is not what the
// daemon put there: a symlink, a FIFO, a directory, a hard link, a file of
// another user. Replaced says that a writer removed it and wrote a new
// file in its place (the write succeeded).
type plantedError struct {
	Name     string
	What     string // "is a symlink", "is a FIFO, not a regular file", ...
	Replaced bool
}

func (e *plantedError) Error() string {
	s := e.Name + " " + e.What
	if e.Replaced {
		s += ": removed, and written as a new file"
	}
	return s
}

// isPlanted reports whether err is, or wraps, a plantedError.
func isPlanted(err error) bool {
	var p *plantedError
	return errors.As(err, &p)
}

// wasReplaced reports whether err is a plantedError that a writer
// replaced: the write succeeded.
func wasReplaced(err error) bool {
	var p *plantedError
	return errors.As(err, &p) && p.Replaced
}

// fileKind describes a file that is not a regular one, for plantedError.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "is a symlink (not followed)"
	case m&fs.ModeNamedPipe != 0:
		return "is a FIFO, not a regular file"
	case m.IsDir():
		return "is a directory, not a regular file"
	case m&fs.ModeSocket != 0:
		return "is a socket, not a regular file"
	case m&fs.ModeDevice != 0:
		return "is a device, not a regular file"
	}
	return fmt.Sprintf("is not a regular file (%s)", m.Type())
}

// checkRegular is the rule on an open file's stat: a regular file with
// one link and, with owned, of the daemon's user.
func checkRegular(name string, st *unix.Stat_t, owned bool) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return &plantedError{Name: name, What: fileKind(statMode(st.Mode))}
	}
	if st.Nlink > 1 {
		return &plantedError{Name: name, What: fmt.Sprintf("has %d hard links, not one", st.Nlink)}
	}
	if owned && int(st.Uid) != os.Geteuid() {
		return &plantedError{Name: name, What: fmt.Sprintf("is owned by uid %d, not by the daemon's %d", st.Uid, os.Geteuid())}
	}
	return nil
}

// statMode is the file type of a stat's mode, as fs.FileMode.
func statMode(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return fs.ModeIrregular
}

// openRegularFd opens name (flag as for open(2); O_NOFOLLOW, O_NONBLOCK
// and O_CLOEXEC are added) and checks it (checkRegular). O_NONBLOCK is
// left set: it changes nothing for a regular file. An open that failed
// because of what name is (ELOOP for a symlink, ENXIO for a FIFO with no
// reader or a socket, EISDIR) is a plantedError too.
func openRegularFd(name string, flag int, perm os.FileMode, owned bool) (int, error) {
	fd, err := unix.Open(name, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENXIO) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENODEV) {
			if fi, lerr := os.Lstat(name); lerr == nil && !fi.Mode().IsRegular() {
				return -1, &plantedError{Name: name, What: fileKind(fi.Mode())}
			}
		}
		return -1, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	if err := checkRegular(name, &st, owned); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// openRegular opens name, a file of an instance's folder, as os.OpenFile
// would, by the rule above: a symlink, a FIFO or any other file than a
// regular one (and, with owned, one of another user) is refused with a
// plantedError, at once.
func openRegular(name string, flag int, perm os.FileMode, owned bool) (*os.File, error) {
	fd, err := openRegularFd(name, flag, perm, owned)
	if err != nil {
		return nil, err
	}
	// Back to blocking, as os.OpenFile leaves a regular file: the fd is
	// not the poller's, and F_SETFL sets only O_APPEND among flag.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flag&unix.O_APPEND); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fcntl", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// createRegularFd opens name for writing, creating it (O_CREAT is added),
// by openRegularFd's rule with owned; a planted file in its place is
// removed and a new one created exclusively (O_EXCL: a file planted again
// meanwhile fails the open, it is not opened). planted, when not nil, is
// what was replaced, for the caller's log: the open succeeded.
func createRegularFd(name string, flag int, perm os.FileMode) (fd int, planted error, err error) {
	fd, err = openRegularFd(name, flag|unix.O_CREAT, perm, true)
	var p *plantedError
	if !errors.As(err, &p) {
		return fd, nil, err
	}
	// unlink, or rmdir for an empty directory; a full directory stays,
	// and the write fails.
	if rerr := os.Remove(name); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return -1, nil, fmt.Errorf("%w; cannot remove it: %w", p, rerr)
	}
	fd, err = openRegularFd(name, flag|unix.O_CREAT|unix.O_EXCL, perm, true)
	if err != nil {
		return -1, nil, fmt.Errorf("%w; replaced, then: %w", p, err)
	}
	p.Replaced = true
	return fd, p, nil
}

// createRegular is createRegularFd with an *os.File.
func createRegular(name string, flag int, perm os.FileMode) (*os.File, error, error) {
	fd, planted, err := createRegularFd(name, flag, perm)
	if err != nil {
		return nil, nil, err
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, flag&unix.O_APPEND); err != nil {
		unix.Close(fd)
		return nil, nil, &fs.PathError{Op: "fcntl", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), planted, nil
}

// checkPlugDir refuses an instance folder whose plug's folder,
// <state>/instances/<plug>, is not a directory of the state directory's
// own (a symlink): the instance's files would be written, and a removed
// instance's folder deleted, wherever it points.
func checkPlugDir(instanceDir string) error {
	plugDir := filepath.Dir(instanceDir)
	fi, err := os.Lstat(plugDir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s %s: plugs neither writes nor deletes through it (remove it: the next start makes a folder)", plugDir, fileKind(fi.Mode()))
	}
	return nil
}
