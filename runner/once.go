package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/sandbox"
)

// DefaultTailBytes is how much of the end of a run's stdout and of its
// stderr a Result keeps when Once.TailBytes is 0.
const DefaultTailBytes = 64 << 10

// defaultKillAfter is a run's wait between the stop signal and SIGKILL
// when neither Once.KillAfter nor Spec.StopTimeout sets one.
const defaultKillAfter = 10 * time.Second

// Once is one run of a program to completion, with an instance's
// environment rules: `plugs setup`, a task's run, a hook, an exec health
// check. It is the one place of plugs that runs such a program; see
// RunOnce.
type Once struct {
	// Spec supplies the instance's identity (PLUGS_PLUG, PLUGS_INSTANCE),
	// directory, env, user and group, limits, setup folder and stop
	// signal. Its Command is what runs unless Command is set.
	Spec    instance.Spec
	Command []string
	// Env adds variables (a task's PLUGS_INPUT, ...) over the spec's env.
	// It cannot override PLUGS_CONFIG, PLUGS_PLUG or PLUGS_INSTANCE; it
	// may set PLUGS_RUN_ID, which otherwise is a fresh random id. A
	// confined run (Runner.RunOnce with a Sandbox) cannot read the
	// daemon's files: a PLUGS_INPUT naming a file outside the instance
	// directory names, for the run, a copy of it there that only the
	// run's user may read, removed when the run ends.
	Env map[string]string
	// ConfigPath is PLUGS_CONFIG; "" means the instance's config.json in
	// the state directory (the one a confined run may read: see
	// Runner.RunOnce).
	ConfigPath string
	// SetupDir is PLUGS_SETUP_DIR; "" means the plug's setup folder
	// (SetupDir), made when missing.
	SetupDir string

	// Stdin is the program's input: nil is /dev/null; an *os.File is
	// passed as it is; any other reader is copied through a pipe.
	Stdin io.Reader
	// Stdout and Stderr receive the program's output as it comes, besides
	// the tails the Result keeps (nil: only the tails). A terminal
	// (*os.File that is one) is passed as it is, and then no tail is kept.
	Stdout, Stderr io.Writer
	// TailBytes caps how much of the end of stdout and of stderr the
	// Result keeps; 0 is DefaultTailBytes.
	TailBytes int

	// Timeout ends the run: the stop signal to the run's process group
	// and to what left it, KillAfter, then SIGKILL to all of them. 0 means
	// no timeout (ctx still ends the run the same way).
	Timeout time.Duration
	// KillAfter is the wait between the stop signal and SIGKILL; 0 is
	// Spec.StopTimeout, or 10s when that is 0 too.
	KillAfter time.Duration
}

// Result is how a run ended.
type Result struct {
	PID      int
	ExitCode int    // -1 when killed by a signal
	Signal   string // e.g. "SIGKILL"; "" when it exited
	Duration time.Duration
	// TimedOut: Once.Timeout ended it; Canceled: its context did.
	TimedOut, Canceled bool
	// OOMKilled: the kernel killed a process of the run at the memory
	// limit of its cgroup (a confined run only).
	OOMKilled bool
	// Stdout and Stderr are the last Once.TailBytes of each; Truncated
	// says that more was written than kept.
	Stdout, Stderr                   []byte
	StdoutTruncated, StderrTruncated bool
}

// Err describes a run that did not exit 0, or returns nil: "exited with
// code 3", "killed by SIGKILL", "timed out after 30s (killed by
// SIGTERM)", "canceled (killed by SIGKILL)", "killed by SIGKILL
// (oom-killed at its memory limit)".
func (res Result) Err() error {
	how := describeExit(instance.Exit{Code: res.ExitCode, Signal: res.Signal})
	if res.OOMKilled {
		how += " (oom-killed at its memory limit)"
	}
	switch {
	case res.TimedOut:
		return fmt.Errorf("timed out after %s (%s)", res.Duration.Round(time.Millisecond), how)
	case res.Canceled:
		return fmt.Errorf("canceled (%s)", how)
	case res.ExitCode != 0 || res.Signal != "":
		return errors.New(how)
	}
	return nil
}

// RunOnce runs o.Command (or o.Spec.Command) to completion and returns how
// it ended. The error is non-nil only when it could not start (missing
// executable, bad directory, a user it may not switch to); a program that
// ran and failed is a Result whose Err says how.
//
// What holds, as for an instance's process:
//
//   - the environment of an instance (env.go: PassedEnv, the spec's env,
//     PYTHONPATH/NODE_PATH for the tree's dependencies, PLUGS_*), plus
//     o.Env and PLUGS_RUN_ID, a random id every process of the run
//     inherits;
//   - the command word resolved as for instances (a file of the tree, else
//     PATH), run in Spec.Dir, as Spec.User/Group, with Spec.Limits;
//   - a process group of its own (unless Stdin is a terminal: then the
//     caller's, so that the terminal's ^C and job control reach it), forked
//     with a parent-death signal, so it dies with the caller;
//   - the timeout or ctx ends it with the stop signal to the group and to
//     every process that left it (the Tracker, by PLUGS_RUN_ID), then
//     SIGKILL after KillAfter; when the program exits, whatever is left of
//     the run is killed too, so RunOnce returns with none of its processes
//     running (grandchildren included);
//   - stdout and stderr are read until they close (at most outputGrace
//     after the exit, for a process that escaped with them open).
//
// With Options.Sandbox, and whether or not the instance's process runs,
// the run is confined exactly as that process would be (confine: the same
// user, Landlock rules, unless Spec.NoSandbox, rlimits, no_new_privs and
// cgroup limits), in a cgroup of its own (runCgroup): its Spec.Limits
// bound the run alone, what is left in it when the leader exits is killed
// (what cleared its environment and left the group included), and it is
// removed when RunOnce returns, never touching the instance's process.
// Result.OOMKilled says when the kernel killed it at its memory limit. It
// may write only the instance directory (made when missing) and what its
// permissions grant; ConfigPath and SetupDir elsewhere are beyond it.
func (r *Runner) RunOnce(ctx context.Context, o Once) (Result, error) {
	var box *runBox
	if sb := r.opts.Sandbox; sb != nil {
		box = &runBox{r: r, sb: sb, instanceDir: InstanceDir(r.opts.StateDir, o.Spec.ID)}
		if err := mkdirInstance(box.instanceDir); err != nil {
			return Result{}, fmt.Errorf("instance directory: %w", err)
		}
	}
	if o.ConfigPath == "" {
		o.ConfigPath = filepath.Join(InstanceDir(r.opts.StateDir, o.Spec.ID), "config.json")
		// A task's run renders config.json as a start does (a service's
		// is already there).
		if len(o.Spec.Config) > 0 {
			if err := mkdirInstance(filepath.Dir(o.ConfigPath)); err != nil {
				return Result{}, fmt.Errorf("instance directory: %w", err)
			}
			if err := writeConfigFile(o.ConfigPath, o.Spec.Config, 0o600); err != nil {
				return Result{}, err
			}
		}
	}
	if o.SetupDir == "" {
		if err := ensureSetupDir(r.opts.StateDir, o.Spec.ID.Plug); err != nil {
			return Result{}, err
		}
		o.SetupDir = SetupDir(r.opts.StateDir, o.Spec.ID.Plug)
	}
	sp, err := r.spawnerFor(o.Spec.Limits.NoNewPrivs)
	if err != nil {
		return Result{}, err
	}
	return runOnce(ctx, sp, r.baseEnv, r.tracker, r.devNull, box, o)
}

// runBox confines a run: Runner.RunOnce with a Sandbox.
type runBox struct {
	r           *Runner
	sb          Sandboxer
	instanceDir string
}

// runOnce is RunOnce's run, confined by box unless it is nil.
func runOnce(ctx context.Context, sp *spawner, base map[string]string, tr Tracker, devNull *os.File, box *runBox, o Once) (Result, error) {
	spec := o.Spec
	argv := o.Command
	if len(argv) == 0 {
		argv = spec.Command
	}
	if len(argv) == 0 {
		return Result{}, errors.New("no command")
	}
	if fi, err := os.Stat(spec.Dir); err != nil {
		return Result{}, fmt.Errorf("working directory: %w", err)
	} else if !fi.IsDir() {
		return Result{}, fmt.Errorf("working directory %s: not a directory", spec.Dir)
	}
	cred, who, err := credential(spec.User, spec.Group)
	if err != nil {
		return Result{}, err
	}
	runID := o.Env["PLUGS_RUN_ID"]
	if runID == "" {
		runID = newRunID()
	}
	declared := map[string]string{}
	for k, v := range spec.Env {
		declared[k] = v
	}
	for k, v := range o.Env {
		declared[k] = v
	}
	vars := map[string]string{
		"PLUGS_PLUG":     spec.ID.Plug,
		"PLUGS_INSTANCE": spec.ID.Instance,
		"PLUGS_RUN_ID":   runID,
	}
	// The program runs in Spec.Dir: relative paths would name other files.
	for _, p := range []*string{&o.ConfigPath, &o.SetupDir} {
		if *p != "" {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
	if o.ConfigPath != "" {
		vars["PLUGS_CONFIG"] = o.ConfigPath
	}
	if o.SetupDir != "" {
		vars["PLUGS_SETUP_DIR"] = o.SetupDir
	}
	var input *runInput
	key := "" // names the run's cgroup and its input's copy
	if box != nil {
		key = newRunID()[:16]
		var err error
		if input, err = box.copyInput(declared, key); err != nil {
			return Result{}, err
		}
		if input != nil {
			defer os.Remove(input.path)
		}
	}
	envv := envFor(base, spec.Dir, declared, who, vars)
	path, err := resolveCommand(spec.Dir, argv[0], envValue(envv, "PATH"))
	if err != nil {
		return Result{}, err
	}
	sig, err := parseSignal(spec.StopSignal)
	if err != nil {
		sig = syscall.SIGTERM
	}
	killAfter := o.KillAfter
	if killAfter <= 0 {
		killAfter = spec.StopTimeout
	}
	if killAfter <= 0 {
		killAfter = defaultKillAfter
	}
	tailBytes := o.TailBytes
	if tailBytes <= 0 {
		tailBytes = DefaultTailBytes
	}

	var closeAfter []*os.File // our ends, closed once the run is over
	var childEnds []*os.File  // the child's ends, closed once it is forked
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	var pumps sync.WaitGroup
	files := make([]*os.File, 3)
	interactive := false
	switch in := o.Stdin.(type) {
	case nil:
		files[0] = devNull
	case *os.File:
		files[0] = in
		interactive = isTerminal(in)
	default:
		pr, pw, err := os.Pipe()
		if err != nil {
			return Result{}, fmt.Errorf("input pipe: %w", err)
		}
		files[0], childEnds, closeAfter = pr, append(childEnds, pr), append(closeAfter, pw)
		// Not waited for: a reader that blocks must not hold the run; the
		// copy ends at the reader's EOF or when the pipe is closed after
		// the run.
		go func() {
			_, _ = io.Copy(pw, in)
			pw.Close()
		}()
	}
	tails := [2]*tailBuffer{{max: tailBytes}, {max: tailBytes}}
	var readers []*os.File
	for i, w := range []io.Writer{o.Stdout, o.Stderr} {
		if f, ok := w.(*os.File); ok && isTerminal(f) {
			files[i+1] = f
			continue
		}
		pr, pw, err := os.Pipe()
		if err != nil {
			return Result{}, fmt.Errorf("output pipe: %w", err)
		}
		files[i+1], childEnds, readers = pw, append(childEnds, pw), append(readers, pr)
		dst := io.Writer(tails[i])
		if w != nil {
			dst = io.MultiWriter(tails[i], w)
		}
		pumps.Go(func() {
			defer pr.Close()
			_, _ = io.Copy(dst, pr)
		})
	}

	// abort undoes the pipes of a run that did not start.
	abort := func() {
		for _, f := range childEnds {
			f.Close()
		}
		childEnds = nil
		for _, f := range readers {
			f.Close()
		}
		for _, f := range closeAfter {
			f.Close()
		}
		pumps.Wait()
	}
	attr := &os.ProcAttr{Dir: spec.Dir, Env: envv, Files: files, Sys: &syscall.SysProcAttr{Credential: cred}}
	forkPath, forkArgv := path, argv
	var st *sandbox.Start
	if box != nil {
		group := runCgroup(spec.ID.Instance, key)
		var err error
		forkPath, forkArgv, st, err = confine(box.sb, spec, group, box.instanceDir, o.SetupDir, path, argv, attr)
		if err != nil {
			abort()
			return Result{}, err
		}
		// Last, after the kill of what is left in it (below).
		defer box.r.releaseCgroup(box.sb, spec.ID.Plug, group)
		attr.Files = append(attr.Files, st.Files...)
		if input != nil {
			if err := input.handOver(box.instanceDir); err != nil {
				_ = st.Started(err)
				abort()
				return Result{}, err
			}
		}
	}

	start := time.Now()
	pid, err := sp.spawnIn(forkPath, forkArgv, attr, !interactive)
	for _, f := range childEnds {
		f.Close()
	}
	childEnds = nil
	if st != nil {
		if serr := st.Started(err); serr != nil && err == nil {
			// The shim could not confine the run and has exited (127).
			awaitExit(pid)
			_, _ = waitPid(pid)
			forked.remove(pid)
			err = serr
		}
	}
	if err != nil {
		abort()
		if st != nil && pid > 0 {
			return Result{}, err
		}
		return Result{}, fmt.Errorf("start %s: %w", argv[0], err)
	}
	target := Target{Env: "PLUGS_RUN_ID=" + runID}
	if !interactive {
		target.Leader = pid
	}
	signalRun := func(s syscall.Signal) {
		if interactive {
			_ = unix.Kill(pid, s)
		} else {
			_ = unix.Kill(-pid, s)
		}
		_, _ = tr.Signal(target, s)
	}
	if err := applyLimits(pid, spec.Limits); err != nil {
		signalRun(syscall.SIGKILL)
	}

	exited := make(chan struct{})
	go func() {
		awaitExit(pid)
		close(exited)
	}()
	res := Result{PID: pid}
	var timeout <-chan time.Time
	if o.Timeout > 0 {
		t := time.NewTimer(o.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-exited:
	case <-timeout:
		res.TimedOut = true
	case <-ctx.Done():
		res.Canceled = true
	}
	if res.TimedOut || res.Canceled {
		signalRun(sig)
		kill := time.NewTimer(killAfter)
		select {
		case <-exited:
		case <-kill.C:
		}
		kill.Stop()
	}
	// The leader is gone (or must go now): nothing of the run outlives it.
	select {
	case <-exited:
	default:
		if !interactive {
			_ = unix.Kill(-pid, syscall.SIGKILL)
		}
		_ = unix.Kill(pid, syscall.SIGKILL)
		<-exited
	}
	// As for instances: the leader is a zombie, its children are adopted;
	// the group's members carrying PLUGS_RUN_ID are killed and waited for
	// with the rest, then the group kill gets those without it.
	killAll(tr, Target{Env: target.Env})
	if !interactive {
		_ = unix.Kill(-pid, syscall.SIGKILL)
	}
	if st != nil {
		// What left the group and cleared its environment is still in the
		// run's cgroup.
		res.OOMKilled = box.r.killCgroup(spec.ID, st)
	}
	ws, werr := waitPid(pid)
	forked.remove(pid)
	res.Duration = time.Since(start)
	res.ExitCode = -1
	if werr == nil {
		if ws.Signaled() {
			res.Signal = signalName(ws.Signal())
		} else {
			res.ExitCode = ws.ExitStatus()
		}
	}
	for _, f := range readers {
		_ = f.SetReadDeadline(time.Now().Add(outputGrace))
	}
	for _, f := range closeAfter {
		f.Close()
	}
	pumps.Wait()
	res.Stdout, res.StdoutTruncated = tails[0].bytes()
	res.Stderr, res.StderrTruncated = tails[1].bytes()
	return res, nil
}

// awaitExit blocks until child pid has exited, without reaping it (the
// pid and its group id stay reserved) and without holding an OS thread: a
// pidfd in the netpoller. It returns at once when no pidfd can be had.
func awaitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	pidfd := os.NewFile(uintptr(fd), "pidfd")
	defer pidfd.Close()
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		return err != nil || info.Signo != 0
	})
}

func newRunID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max       int
	mu        sync.Mutex
	b         []byte
	truncated bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.max {
		t.truncated = t.truncated || len(t.b) > 0 || len(p) > t.max
		t.b = append(t.b[:0], p[len(p)-t.max:]...)
		return n, nil
	}
	if over := len(t.b) + len(p) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
		t.truncated = true
	}
	t.b = append(t.b, p...)
	return n, nil
}

func (t *tailBuffer) bytes() ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.b...), t.truncated
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// runInput is a confined run's copy of its PLUGS_INPUT file.
type runInput struct{ path string }

// copyInput copies the file PLUGS_INPUT names into the instance directory,
// the one folder of the daemon's a confined run may read, and points
// PLUGS_INPUT at the copy; nil when there is no such file or it is there
// already. The caller's file stays where it is, for the caller to remove.
func (b *runBox) copyInput(env map[string]string, key string) (*runInput, error) {
	src := env["PLUGS_INPUT"]
	if src == "" || !filepath.IsAbs(src) || filepath.Dir(src) == b.instanceDir {
		return nil, nil
	}
	data, err := os.ReadFile(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("run input: %w", err)
	}
	in := &runInput{path: filepath.Join(b.instanceDir, ".input-"+key)}
	// The instance directory is the plugin's: a link or FIFO it planted
	// there is replaced, never written through (openfile.go).
	f, _, err := createRegular(in.path, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("run input: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("run input: %w", err)
	}
	env["PLUGS_INPUT"] = in.path
	return in, nil
}

// handOver gives the copy to the owner of the instance directory, which
// Sandbox.Prepare made the run's user.
func (in *runInput) handOver(instanceDir string) error {
	fi, err := os.Stat(instanceDir)
	if err != nil {
		return fmt.Errorf("run input: %w", err)
	}
	sys := fi.Sys().(*syscall.Stat_t)
	if err := os.Lchown(in.path, int(sys.Uid), int(sys.Gid)); err != nil {
		return fmt.Errorf("run input: %w", err)
	}
	return nil
}
