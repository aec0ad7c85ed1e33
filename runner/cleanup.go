package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plugs-dev/plugs/reconcile"
)

// staleTermWait is how long CleanupStale waits after SIGTERM before SIGKILL.
const staleTermWait = 2 * time.Second

// CleanupStale stops what a killed predecessor left running. For every
// instance.json under stateDir/instances that records a live process, it
// signals the process group only when the recorded pid still runs with the
// recorded start time (/proc/<pid>/stat field 22): a recycled pid is never
// signalled. Members of the group that outlived their leader (double-forked
// grandchildren) are killed when they started after the leader. Each file
// is then marked stopped. Call it before starting a Runner on stateDir.
func CleanupStale(stateDir string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	files, err := filepath.Glob(filepath.Join(stateDir, "instances", "*", "*", "instance.json"))
	if err != nil {
		return fmt.Errorf("cleanup stale instances: %w", err)
	}
	var errs []error
	// Temporary files of atomic writes cut short by the kill.
	tmps, _ := filepath.Glob(filepath.Join(stateDir, "instances", "*", "*", ".*.tmp*"))
	for _, tmp := range tmps {
		errs = append(errs, os.Remove(tmp))
	}
	for _, name := range files {
		f, err := ReadInstanceFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			// Unreadable state says nothing we could act on safely.
			logger.Warn("stale instance file unreadable, removing", "file", name, "err", err)
			errs = append(errs, os.Remove(name))
			continue
		}
		if f.State == string(reconcile.StateStopped) && f.PID == 0 {
			continue
		}
		if f.PID > 0 && f.PIDStartTime > 0 {
			killStaleGroup(f.PID, f.PIDStartTime, logger.With("plug", f.Plug, "instance", f.Instance))
		}
		f.State, f.Reason, f.PID, f.PIDStartTime = string(reconcile.StateStopped), "cleaned up after the previous daemon", 0, 0
		f.Since, f.StartedAt = time.Now(), time.Time{}
		if err := writeInstanceFile(name, f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killStaleGroup kills the process group led by pid, if pid is still the
// process that started at startTime, or the group's surviving members when
// the leader is gone.
func killStaleGroup(pid int, startTime uint64, log *slog.Logger) {
	st, err := readProcStat(pid)
	switch {
	case err == nil && st.StartTime == startTime && st.PGRP == pid:
		log.Info("stopping stale instance", "pid", pid)
		_ = unix.Kill(-pid, syscall.SIGTERM)
		waitGone(pid, staleTermWait)
		_ = unix.Kill(-pid, syscall.SIGKILL)
		waitGone(pid, staleTermWait)
		for _, m := range groupMembers(pid) {
			waitGone(m, staleTermWait)
		}
	case err == nil:
		log.Info("stale instance pid belongs to another process now; not signalled", "pid", pid)
	default:
		// The leader is gone. While anything of its group lives, the
		// group id cannot be reused by a new leader, so members that
		// started after the leader are its descendants.
		for _, m := range groupMembers(pid) {
			if ms, err := readProcStat(m); err == nil && ms.StartTime >= startTime {
				log.Info("killing orphan of stale instance", "pid", m)
				_ = unix.Kill(m, syscall.SIGKILL)
				waitGone(m, staleTermWait)
			}
		}
	}
}

// waitGone waits up to d for pid to exit, on a pidfd rather than a poll.
func waitGone(pid int, d time.Duration) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone already
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, int(d.Milliseconds()))
		if err != unix.EINTR {
			return
		}
	}
}
