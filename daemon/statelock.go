package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// stateLock is an exclusive flock on the state directory itself and on
// <state>/daemon.lock (which names the holder's pid), held for the daemon's
// lifetime so that two daemons never share a state directory. The kernel
// drops them when the process dies, so a killed daemon leaves no stale
// lock. The directory's lock is the fence: daemon.lock can be deleted
// under a running daemon (a clean-up, a hostile user), and a second daemon
// would then lock a new file of that name; a directory in use cannot be.
type stateLock struct{ dir, f *os.File }

func lockStateDir(stateDir string) (*stateLock, error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	path := filepath.Join(stateDir, "daemon.lock")
	taken := func(err error) error {
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder, _ := os.ReadFile(path)
			pid := strings.TrimSpace(string(holder))
			if pid == "" {
				pid = "unknown"
			}
			return fmt.Errorf("another plugs daemon (pid %s) uses state dir %s", pid, stateDir)
		}
		return fmt.Errorf("lock %s: %w", path, err)
	}
	dir, err := os.Open(stateDir)
	if err != nil {
		return nil, fmt.Errorf("open state dir: %w", err)
	}
	if err := unix.Flock(int(dir.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		dir.Close()
		return nil, taken(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		dir.Close()
		return nil, taken(err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &stateLock{dir: dir, f: f}, nil
}

func (l *stateLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	_ = l.f.Close()
	_ = l.dir.Close() // drops its lock
}
