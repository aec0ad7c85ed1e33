package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/layout"
	"golang.org/x/sys/unix"
)

// staleTermWait is how long CleanupStale waits after SIGTERM before SIGKILL.
const staleTermWait = 2 * time.Second

// CleanupStale stops what a killed predecessor left running, in two
// passes. First, for every instance.json under stateDir/instances that
// records a live process, it signals the process group only when the
// recorded pid still runs with the recorded start time (/proc/<pid>/stat
// field 22): a recycled pid is never signalled. Members of the group that
// outlived their leader (double-forked grandchildren) are killed when they
// started after the leader. Each file is then marked stopped.
//
// Second, it finds by their environment the processes no file names: a
// daemon killed between a fork and the instance.json write leaves a plugin
// that dies of its parent-death signal, but its children live on in a
// group nobody recorded. Every process started for an instance inherits
// PLUGS_CONFIG=<stateDir>/instances/<plug>/<instance>/config.json, so each
// process whose /proc/<pid>/environ holds such a value is stopped (SIGTERM,
// a short wait, then SIGKILL, rescanning for late forks), except the
// caller, its ancestors and its descendants. A process is signalled only
// through a pidfd opened while its environment matched, so an unrelated
// process that reuses a pid is never signalled.
//
// The caller must hold stateDir exclusively (the daemon's state-dir lock)
// and call it before a Runner on stateDir starts or removes an instance
// (Options.StartAfter holds them while it runs): then no live
// supervisor owns any process that matches, and every one is stale.
func CleanupStale(stateDir string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	files, err := filepath.Glob(filepath.Join(layout.Instances(stateDir), "*", "*", "instance.json"))
	if err != nil {
		return fmt.Errorf("cleanup stale instances: %w", err)
	}
	var errs []error
	// Temporary files of atomic writes cut short by the kill.
	tmps, _ := filepath.Glob(filepath.Join(layout.Instances(stateDir), "*", "*", ".*.tmp*"))
	for _, tmp := range tmps {
		errs = append(errs, os.Remove(tmp))
	}
	// The process groups, read from /proc once for every file whose
	// leader is gone (a scan per file read every process 1,000 times after
	// a daemon of 1,000 instances was killed: 1.4 s with 69 processes on
	// the machine, 21 s with 1,070). What forks after the scan is found by
	// stopStrays below.
	groups := sync.OnceValue(processGroups)
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
		if f.State == string(instance.StateStopped) && f.PID == 0 {
			continue
		}
		if f.PID > 0 && f.PIDStartTime > 0 {
			killStaleGroup(f.PID, f.PIDStartTime, logger.With("plug", f.Plug, "instance", f.Instance), groups)
		}
		f.State, f.Reason, f.PID, f.PIDStartTime = string(instance.StateStopped), "cleaned up after the previous daemon", 0, 0
		f.Since, f.StartedAt = time.Now(), time.Time{}
		if err := writeInstanceFile(name, f, nil); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, stopStrays(stateDir, logger))
	return errors.Join(errs...)
}

// killStaleGroup kills the process group led by pid, if pid is still the
// process that started at startTime, or the group's surviving members when
// the leader is gone (groups: the members of every group, by its id).
func killStaleGroup(pid int, startTime uint64, log *slog.Logger, groups func() map[int][]int) {
	st, err := readProcStat(pid)
	switch {
	case err == nil && st.StartTime == startTime && st.PGRP == pid:
		log.Info("stopping stale instance", "pid", pid)
		_ = unix.Kill(-pid, syscall.SIGTERM)
		waitGone(pid, staleTermWait)
		_ = unix.Kill(-pid, syscall.SIGKILL)
		waitGone(pid, staleTermWait)
		for _, m := range groups()[pid] {
			if ms, err := readProcStat(m); err == nil && ms.PGRP == pid { // not a newcomer on a reused pid
				waitGone(m, staleTermWait)
			}
		}
	case err == nil:
		log.Info("stale instance pid belongs to another process now; not signalled", "pid", pid)
	default:
		// The leader is gone. While anything of its group lives, the
		// group id cannot be reused by a new leader, so members that
		// started after the leader are its descendants.
		for _, m := range groups()[pid] {
			if ms, err := readProcStat(m); err == nil && ms.PGRP == pid && ms.StartTime >= startTime {
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

// strayKillRounds bounds how often stopStrays rescans for processes that
// forked while their parents were being killed.
const strayKillRounds = 10

// stray is a process started for an instance of the state dir, found by
// its environment.
type stray struct {
	pid, pgid int
	start     uint64 // with pid, identifies the process
	instance  string // plug/instance, from its PLUGS_CONFIG
}

// stopStrays stops every process whose environment places it under
// stateDir/instances: SIGTERM, up to staleTermWait for it to exit, then
// SIGKILL until a scan finds none.
func stopStrays(stateDir string, log *slog.Logger) error {
	m, err := newConfigMatcher(stateDir)
	if err != nil {
		return fmt.Errorf("cleanup stale processes: %w", err)
	}
	strays := findStrays(m, os.Getpid())
	if len(strays) == 0 {
		return nil
	}
	for _, s := range strays {
		log.Info("stopping process of a stale instance that no instance file names", "instance", s.instance, "pid", s.pid, "pgid", s.pgid)
	}
	signalStrays(strays, syscall.SIGTERM, staleTermWait)
	for range strayKillRounds {
		if strays = findStrays(m, os.Getpid()); len(strays) == 0 {
			return nil
		}
		for _, s := range strays {
			log.Warn("killing process of a stale instance", "instance", s.instance, "pid", s.pid, "pgid", s.pgid)
		}
		signalStrays(strays, syscall.SIGKILL, staleTermWait)
	}
	if strays = findStrays(m, os.Getpid()); len(strays) > 0 {
		return fmt.Errorf("cleanup stale processes: %d still alive after SIGKILL (first pid %d, instance %s)", len(strays), strays[0].pid, strays[0].instance)
	}
	return nil
}

// findStrays scans /proc for the processes whose PLUGS_CONFIG m matches,
// leaving out self, its ancestors and its descendants.
func findStrays(m *configMatcher, self int) []stray {
	stats := map[int]procStat{}
	for _, pid := range procPIDs() {
		if st, err := readProcStat(pid); err == nil {
			stats[pid] = st
		}
	}
	ancestors := map[int]bool{}
	for pid, i := self, 0; pid > 0 && i <= len(stats); pid, i = stats[pid].PPID, i+1 {
		ancestors[pid] = true
	}
	descends := func(pid int) bool {
		for i := 0; pid > 0 && i <= len(stats); i++ {
			if pid == self {
				return true
			}
			st, ok := stats[pid]
			if !ok {
				return false
			}
			pid = st.PPID
		}
		return false
	}
	var strays []stray
	for pid, st := range stats {
		if st.State == 'Z' || ancestors[pid] || descends(pid) {
			continue
		}
		configs, err := procEnv(pid, "PLUGS_CONFIG")
		if err != nil {
			continue // gone, or another user's: nothing we may touch
		}
		for _, c := range configs {
			if id, ok := m.match(c); ok {
				strays = append(strays, stray{pid: pid, pgid: st.PGRP, start: st.StartTime, instance: id})
				break
			}
		}
	}
	return strays
}

// signalStrays sends sig to each stray that is still the process found
// (same pid and start time, checked after its pidfd is open, so the pidfd
// cannot name a newcomer), then waits up to d for all of them to exit.
func signalStrays(strays []stray, sig syscall.Signal, d time.Duration) {
	var fds []unix.PollFd
	defer func() {
		for _, f := range fds {
			unix.Close(int(f.Fd))
		}
	}()
	for _, s := range strays {
		fd, err := unix.PidfdOpen(s.pid, 0)
		if err != nil {
			continue // gone
		}
		if st, err := readProcStat(s.pid); err != nil || st.StartTime != s.start {
			unix.Close(fd)
			continue
		}
		_ = unix.PidfdSendSignal(fd, sig, nil, 0)
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	deadline := time.Now().Add(d)
	for pending := fds; len(pending) > 0; {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		n, err := unix.Poll(pending, int(left.Milliseconds())+1)
		if err != nil && err != unix.EINTR {
			return
		}
		if n <= 0 {
			continue
		}
		// Keep the ones still running; a pidfd polls readable once its
		// process has exited.
		alive := pending[:0:0]
		for _, f := range pending {
			if f.Revents == 0 {
				f.Revents = 0
				alive = append(alive, f)
			}
		}
		pending = alive
	}
}

// configMatcher recognises PLUGS_CONFIG values under one state dir.
type configMatcher struct {
	dir  string      // <stateDir>/instances, absolute
	fi   os.FileInfo // of dir; nil when it does not exist
	same map[string]bool
}

func newConfigMatcher(stateDir string) (*configMatcher, error) {
	dir, err := filepath.Abs(layout.Instances(stateDir))
	if err != nil {
		return nil, err
	}
	fi, _ := os.Stat(dir)
	return &configMatcher{dir: dir, fi: fi, same: map[string]bool{}}, nil
}

// match reports whether config is <stateDir>/instances/<plug>/<instance>/config.json,
// by path or, for a state dir reached through another path (a symlink),
// by the identity of the instances directory; it returns "plug/instance".
func (m *configMatcher) match(config string) (string, bool) {
	config = filepath.Clean(config)
	if !filepath.IsAbs(config) || filepath.Base(config) != "config.json" {
		return "", false
	}
	instDir := filepath.Dir(config)
	plugDir := filepath.Dir(instDir)
	dir := filepath.Dir(plugDir)
	if filepath.Base(dir) != filepath.Base(layout.Instances("")) || plugDir == dir || instDir == plugDir {
		return "", false
	}
	id := filepath.Base(plugDir) + "/" + filepath.Base(instDir)
	if dir == m.dir {
		return id, true
	}
	same, ok := m.same[dir]
	if !ok {
		fi, err := os.Stat(dir)
		same = err == nil && m.fi != nil && os.SameFile(fi, m.fi)
		m.same[dir] = same
	}
	return id, same
}
