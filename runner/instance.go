package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/plugs-dev/plugs/internal/signame"
	"github.com/plugs-dev/plugs/sandbox"
	"golang.org/x/sys/unix"
)

// outputGrace bounds how long output is still read after an instance's
// process group is gone: only a process that left the group can hold the
// pipe open that long, and it is not waited for.
const outputGrace = 2 * time.Second

// supervised is one supervised instance. Its goroutine (run) owns the
// process and is the only writer of its status and files.
type supervised struct {
	r   *Runner
	id  instance.ID
	dir string

	ctl  chan ctlMsg
	done chan struct{}

	out   *rotatingFile
	pumps sync.WaitGroup // the output pipes not closed yet

	// later guards the housekeeper's work on the instance's folder
	// (laterFiles): finished, set by finish, ends it before Remove may
	// delete the folder.
	later    sync.Mutex
	finished bool

	// noFolder, set by prepare when the instance's folder could not be
	// made or was refused (a symlinked plug folder: checkPlugDir), stops
	// the state writes, which would go through it. The instance's
	// goroutine alone uses it.
	noFolder bool

	// writeMu serializes instance.json's writes: the goroutine's, and the
	// retries of one that failed (retryState). Guarded by it: retryIn,
	// the wait before the next retry (0: none pending), and removed, set
	// when the folder is about to go (no write may make it again).
	writeMu sync.Mutex
	retryIn time.Duration
	removed bool

	// guarded by r.mu
	status   instance.Status
	pidStart uint64
	box      *sandbox.Start // the current process's sandbox (sandbox.go)
}

type ctlMsg struct {
	ctx     context.Context
	restart bool
	reply   chan error // restart: the result of the new start
	// unhealthy, set by RestartUnhealthy (runner/health.go), stops the
	// process as if it had crashed: the restart goes through the backoff.
	unhealthy string
	// remove, with a stop (Remove): the instance's folder is about to go,
	// so its final state is told to the observers but not written.
	remove bool
}

func newInstance(r *Runner, spec instance.Spec) *supervised {
	now := r.clock.Now()
	out := newRotatingFile(filepath.Join(InstanceDir(r.opts.StateDir, spec.ID), layout.OutputLogName), r.opts.LogMaxSize, r.opts.LogBackups)
	out.now = r.clock.Now
	id := spec.ID // not spec: the closure would keep a copy of it
	out.dropped = func(err error, n int64) {
		// Once a minute at most: a full disk must not flood the log too.
		r.log.Warn("instance output dropped: output.log cannot be written", "plug", id.Plug, "instance", id.Instance, "bytes", n, "err", err)
	}
	out.planted = func(err error) {
		r.log.Error("instance folder: a file planted in output.log's place replaced", "plug", id.Plug, "instance", id.Instance, "err", err)
	}
	return &supervised{
		r:    r,
		id:   spec.ID,
		dir:  InstanceDir(r.opts.StateDir, spec.ID),
		ctl:  make(chan ctlMsg),
		done: make(chan struct{}),
		out:  out,
		status: instance.Status{
			ID: spec.ID, Spec: spec, State: instance.StateStarting, Since: now,
		},
	}
}

// currentSpec is the spec the next process starts with; Update changes it.
func (in *supervised) currentSpec() instance.Spec {
	in.r.mu.Lock()
	defer in.r.mu.Unlock()
	return in.status.Spec
}

// restartPolicy is the current spec's restart policy.
func (in *supervised) restartPolicy() instance.RestartPolicy {
	in.r.mu.Lock()
	defer in.r.mu.Unlock()
	return in.status.Spec.Restart
}

func (in *supervised) state() instance.State {
	in.r.mu.Lock()
	defer in.r.mu.Unlock()
	return in.status.State
}

// control asks the instance goroutine to stop or restart. A restart
// returns the result of the new start.
func (in *supervised) control(ctx context.Context, restart bool) error {
	return in.send(ctlMsg{ctx: ctx, restart: restart, reply: make(chan error, 1)})
}

// send hands m to the instance's goroutine and returns its reply.
func (in *supervised) send(m ctlMsg) error {
	select {
	case in.ctl <- m:
	case <-in.done:
		return errors.New("instance stopped")
	}
	select {
	case err := <-m.reply:
		return err
	case <-in.done:
		return errors.New("instance stopped")
	}
}

// run supervises the instance until it is stopped. first receives the
// result of the first start, whose pre_start ends with startCtx (Start's
// ctx: a daemon that stops does not wait out a hanging hook); startCtx is
// not used once first has its answer.
//
// An idle instance is this goroutine alone, parked in run, supervise and
// wait: their frames stay small (a few hundred bytes each), so that its
// stack shrinks to the minimum at the next GC. Whatever copies a Status
// or a Spec (persisting, logging, the backoff) is done in functions
// called from them, not inlined in them (the go:noinline marks).
func (in *supervised) run(startCtx context.Context, first chan<- error) {
	defer close(in.done)
	log := in.r.log.With("plug", in.id.Plug, "instance", in.id.Instance)
	backoff := NewBackoff(in.restartPolicy())
	reply := first
	prepared := false
	for initial := true; ; initial = false {
		var msg *ctlMsg // the control message that ended this round, if any
		hookCtx := context.Background()
		if initial {
			hookCtx = startCtx
		}
		p, fail, retry, parked := in.start(hookCtx, &prepared, &msg)
		if initial && retry != nil {
			// The first process of a Start never got going: the start
			// failed, as systemd fails a start job whose ExecStartPre
			// fails, and the caller decides what follows (a replace
			// starts the previous spec again over this failed instance;
			// a create is retried by the next reconcile). Retrying it
			// here would race that: the rollback's Start found the
			// instance starting again and was refused, leaving none.
			fail, retry = retry, nil
		}
		// The state is set before Start returns, so that its caller
		// observes the failure.
		var delay time.Duration
		var reason string
		switch {
		case msg != nil:
		case fail != nil:
			in.failed(log, fail)
			prepared = false
		case retry != nil:
			delay, reason = in.startFailed(log, backoff, retry)
		}
		if reply != nil {
			reply <- cmpErr(fail, retry)
			reply = nil
		}
		switch {
		case msg != nil:
			// A stop or restart came during pre_start.
		case parked, fail != nil:
			m := <-in.ctl
			msg = &m
		case retry != nil:
			msg = in.wait(delay, reason)
		default:
			msg = in.supervise(p, backoff, log)
		}
		if msg != nil && !msg.restart {
			in.finish(msg.remove)
			msg.reply <- nil
			return
		}
		if msg != nil {
			reply = msg.reply
		}
		if !parked {
			in.countRestart()
		}
	}
}

//go:noinline
func (in *supervised) failed(log *slog.Logger, fail error) {
	log.Warn("instance failed", "err", fail)
	in.setState(func(s *instance.Status) {
		s.State, s.Reason, s.PID, s.StartedAt = instance.StateFailed, fail.Error(), 0, time.Time{}
	})
}

// startFailed puts an instance whose pre_start failed in backoff.
//
//go:noinline
func (in *supervised) startFailed(log *slog.Logger, backoff *Backoff, retry error) (time.Duration, string) {
	backoff.Policy = NewBackoff(in.restartPolicy()).Policy
	now := in.r.clock.Now()
	delay, reason := backoff.NextFailedStart(now, now, retry.Error(), in.r.opts.Rand)
	log.Warn("instance start failed", "reason", reason)
	in.setWaiting(delay, reason)
	return delay, reason
}

//go:noinline
func (in *supervised) countRestart() {
	in.r.mu.Lock()
	defer in.r.mu.Unlock()
	in.status.Restarts++
}

func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// start readies and starts one process of the instance: instance files,
// the setup gate, the verifier, pre_start, the fork. fail is an error that
// needs a change to go away (failed); retry a failed pre_start (backoff;
// run makes it a fail on the first start of a Start);
// parked means the instance waits for plugs setup. A stop or restart that
// comes during pre_start ends it and lands in *msg; hookCtx's end cancels
// pre_start ("pre_start canceled", a retry).
func (in *supervised) start(hookCtx context.Context, prepared *bool, msg **ctlMsg) (p *process, fail, retry error, parked bool) {
	spec := in.currentSpec()
	if !*prepared {
		if err := in.prepare(); err != nil {
			return nil, err, nil, false
		}
		*prepared = true
	}
	if spec.SetupRequired && !SetupDone(in.r.opts.StateDir, spec.ID.Plug) {
		in.setState(func(s *instance.Status) {
			s.State, s.Reason, s.PID, s.StartedAt = instance.StateNeedsSetup, needsSetupReason(spec.ID.Plug), 0, time.Time{}
		})
		return nil, nil, nil, true
	}
	if verify := in.r.opts.Verify; verify != nil {
		if err := verify(spec); err != nil {
			return nil, fmt.Errorf("verify %s: %w", spec.Dir, err), nil, false
		}
	}
	if len(spec.Hooks.PreStart) > 0 {
		in.notify(in.update(func(s *instance.Status) {
			s.State, s.Reason, s.PID, s.StartedAt = instance.StateStarting, "pre_start", 0, time.Time{}
		}))
		ctx, cancel := context.WithCancel(hookCtx)
		done := make(chan error, 1)
		go func() { done <- in.runHook(ctx, "pre_start", spec.Hooks.PreStart, spec.Hooks.Timeout) }()
		select {
		case err := <-done:
			cancel()
			if err != nil {
				return nil, nil, err, false
			}
		case m := <-in.ctl:
			cancel()
			<-done
			*msg = &m
			return nil, nil, nil, false
		}
	}
	p, err := in.spawn()
	return p, err, nil, false
}

// supervise watches a running process until it exits, a control message
// comes, or post_start fails, and returns the control message (nil when
// it is time to start again).
func (in *supervised) supervise(p *process, backoff *Backoff, log *slog.Logger) *ctlMsg {
	in.started(p, log)
	post, cancelPost := in.postStart(p)
	defer func() {
		cancelPost()
		if post != nil {
			<-post
		}
	}()
	for {
		select {
		case <-p.zombie:
			cancelPost()
			delay, reason := in.exited(p, backoff, log)
			return in.wait(delay, reason)
		case m := <-in.ctl:
			cancelPost()
			delay, reason, stop := in.stopped(p, backoff, log, m)
			if stop {
				return &m
			}
			return in.wait(delay, reason)
		case err := <-post:
			post = nil
			if err == nil {
				continue
			}
			delay, reason := in.postStartFailed(p, backoff, log, err)
			return in.wait(delay, reason)
		}
	}
}

// started persists a started process (its start time) and has its log
// made, off the start (touchLog; opened by the first output).
//
//go:noinline
func (in *supervised) started(p *process, log *slog.Logger) {
	start := p.startTime()
	in.persist(in.update(func(s *instance.Status) {
		if s.PID == p.pid {
			in.pidStart = start
		}
	}))
	log.Info("instance started", "pid", p.pid)
	in.r.housekeep.add(in.touchLog)
}

// laterFiles hands f, file work in the instance's folder that a start
// does not need, to the housekeeper; it does nothing once the instance
// has finished.
func (in *supervised) laterFiles(f func()) {
	in.r.housekeep.add(func() {
		in.later.Lock()
		defer in.later.Unlock()
		if !in.finished {
			f()
		}
	})
}

// touchLog makes sure the instance's log exists (housekeeper: after the
// starts pause).
func (in *supervised) touchLog() {
	if err := in.out.Touch(); err != nil {
		// The process runs on; its output is lost until a write succeeds
		// in opening the file.
		in.r.log.Error("output log", "plug", in.id.Plug, "instance", in.id.Instance, "err", err)
	}
}

// exited reaps a process that exited and returns the backoff's delay.
//
//go:noinline
func (in *supervised) exited(p *process, backoff *Backoff, log *slog.Logger) (time.Duration, string) {
	exit := in.reap(p)
	in.recordExit(exit)
	backoff.Policy = NewBackoff(in.restartPolicy()).Policy
	delay, reason := backoff.Next(in.r.clock.Now(), p.startedAt, exit, in.r.opts.Rand)
	log.Warn("instance exited", "reason", reason)
	return delay, reason
}

// stopped stops the process for control message m: stop reports a stop
// or restart (m is the caller's to answer), else m was RestartUnhealthy's
// (runner/health.go), answered here, and the restart goes through the
// backoff as a crash would.
//
//go:noinline
func (in *supervised) stopped(p *process, backoff *Backoff, log *slog.Logger, m ctlMsg) (delay time.Duration, reason string, stop bool) {
	exit := in.stopProcess(m.ctx, p, m.restart, true)
	in.recordExit(exit)
	if m.unhealthy == "" {
		return 0, "", true
	}
	m.reply <- nil
	delay, _ = backoff.Next(in.r.clock.Now(), p.startedAt, exit, in.r.opts.Rand)
	log.Warn("instance unhealthy, restarting", "reason", m.unhealthy, "delay", delay)
	return delay, m.unhealthy, false
}

//go:noinline
func (in *supervised) postStartFailed(p *process, backoff *Backoff, log *slog.Logger, err error) (time.Duration, string) {
	in.recordExit(in.stopProcess(context.Background(), p, false, false))
	backoff.Policy = NewBackoff(in.restartPolicy()).Policy
	delay, reason := backoff.NextFailedStart(in.r.clock.Now(), p.startedAt, err.Error(), in.r.opts.Rand)
	log.Warn("instance start failed", "reason", reason)
	return delay, reason
}

// wait holds an exited instance in backoff for delay (forever when
// negative: failed) and returns the control message that ended the wait,
// or nil when it is time to start again. A zero delay (the first crash in
// a row) arms no timer: the restart follows the exit without a wake-up.
func (in *supervised) wait(delay time.Duration, reason string) *ctlMsg {
	in.setWaiting(delay, reason)
	if delay < 0 {
		m := <-in.ctl
		return &m
	}
	if delay == 0 {
		select {
		case m := <-in.ctl: // a stop that came with the crash wins
			return &m
		default:
			return nil
		}
	}
	wake := make(chan struct{}, 1)
	t := in.r.clock.AfterFunc(delay, func() { wake <- struct{}{} })
	select {
	case <-wake:
		return nil
	case m := <-in.ctl:
		t.Stop()
		return &m
	}
}

// setWaiting sets the state of an instance waiting delay to start again:
// backoff, or failed when delay is negative (it gave up). The same state
// and reason twice write nothing.
func (in *supervised) setWaiting(delay time.Duration, reason string) {
	state := instance.StateBackoff
	if delay < 0 {
		state = instance.StateFailed
	}
	in.r.mu.Lock()
	same := in.status.State == state && in.status.Reason == reason && in.status.PID == 0
	in.r.mu.Unlock()
	if same {
		return
	}
	in.setState(func(s *instance.Status) {
		s.State, s.Reason, s.PID, s.StartedAt = state, reason, 0, time.Time{}
		s.GaveUp = delay < 0
	})
}

// finish marks the instance stopped and waits for its output to drain;
// with remove (Remove), instance.json keeps its last state: the folder is
// deleted next.
func (in *supervised) finish(remove bool) {
	st := in.update(func(s *instance.Status) {
		s.State, s.Reason, s.PID, s.StartedAt = instance.StateStopped, "stopped", 0, time.Time{}
	})
	if !remove {
		in.writeState(st)
	} else {
		in.writeMu.Lock()
		in.removed = true
		in.writeMu.Unlock()
	}
	in.notify(st)
	in.later.Lock()
	in.finished = true
	in.later.Unlock()
	in.pumps.Wait()
	in.out.Close()
	in.releaseSandbox()
}

func (in *supervised) recordExit(e instance.Exit) {
	in.r.mu.Lock()
	defer in.r.mu.Unlock()
	in.status.LastExit = &e
}

// setState changes the status and persists it.
func (in *supervised) setState(change func(*instance.Status)) {
	in.persist(in.update(change))
}

// update changes the status under the runner lock and returns a copy.
func (in *supervised) update(change func(*instance.Status)) instance.Status {
	in.r.mu.Lock()
	defer in.r.mu.Unlock()
	before := in.status.State
	change(&in.status)
	if in.status.State != before {
		in.status.Since = in.r.clock.Now()
	}
	if in.status.PID == 0 {
		in.pidStart = 0
	}
	return in.status
}

// persist writes s to instance.json, then notifies the observer. Only the
// instance goroutine calls it, so the file follows the order of changes.
func (in *supervised) persist(s instance.Status) {
	in.writeState(s)
	in.notify(s)
}

// writeState writes s to instance.json (persist without the notice). A
// write that fails (a full disk) is retried with the status of the moment
// (retryState) until one succeeds: instance.json must not keep naming a
// pid that is gone.
func (in *supervised) writeState(s instance.Status) {
	if in.noFolder {
		return
	}
	in.writeMu.Lock()
	defer in.writeMu.Unlock()
	if in.removed {
		return
	}
	in.writeLocked(s)
}

// State write retries: the first after stateRetryFirst, doubling up to
// stateRetryMax while they fail.
const (
	stateRetryFirst = time.Second
	stateRetryMax   = time.Minute
)

// writeLocked writes s with writeMu held, and arms a retry when it fails.
func (in *supervised) writeLocked(s instance.Status) {
	in.r.mu.Lock()
	pidStart := in.pidStart
	in.r.mu.Unlock()
	err := writeInstanceFile(filepath.Join(in.dir, "instance.json"), instanceFile(s, pidStart), in.laterFiles)
	switch {
	case wasReplaced(err):
		// Written all the same, in a new file (openfile.go).
		in.r.log.Error("instance folder: a file planted in instance.json's twin's place replaced", "plug", in.id.Plug, "instance", in.id.Instance, "err", err)
	case err != nil && in.retryIn == 0:
		in.r.log.Error("write instance file: retried until it succeeds", "plug", in.id.Plug, "instance", in.id.Instance, "err", err)
		in.retryIn = stateRetryFirst
		time.AfterFunc(in.retryIn, in.retryState)
	case err == nil && in.retryIn != 0:
		in.retryIn = 0
		in.r.log.Info("instance file written again", "plug", in.id.Plug, "instance", in.id.Instance)
	}
}

// retryState writes the instance's status of now, after a write failed;
// it arms the next retry while they fail, and stops once the instance's
// folder is removed or the runner closed.
func (in *supervised) retryState() {
	in.writeMu.Lock()
	defer in.writeMu.Unlock()
	in.r.mu.Lock()
	closed, st := in.r.closed, in.status
	in.r.mu.Unlock()
	if in.removed || closed || in.retryIn == 0 {
		in.retryIn = 0
		return
	}
	wait := in.retryIn
	in.retryIn = -1 // pending: writeLocked arms no second timer
	in.writeLocked(st)
	if in.retryIn == -1 { // failed again
		in.retryIn = min(2*wait, stateRetryMax)
		time.AfterFunc(in.retryIn, in.retryState)
	}
}

// stoppingFileAfter is how long a stopped process may take to exit before
// instance.json says "stopping" (stopProcess).
const stoppingFileAfter = 100 * time.Millisecond

func (in *supervised) notify(s instance.Status) {
	if in.r.notifier != nil {
		in.r.notifier.post(s)
	}
}

func instanceFile(s instance.Status, pidStart uint64) *InstanceFile {
	f := &InstanceFile{
		UUID: s.Spec.UUID, Plug: s.ID.Plug, Instance: s.ID.Instance,
		Version: s.Spec.Version, Revision: s.Spec.Revision,
		PluginUUID: s.Spec.Plugin.UUID, PluginName: s.Spec.Plugin.Name,
		PluginVersion: s.Spec.Plugin.Version, Description: s.Spec.Plugin.Description,
		PID: s.PID, PIDStartTime: pidStart,
		State: string(s.State), Reason: s.Reason, Since: s.Since, StartedAt: s.StartedAt,
		Restarts: s.Restarts, ConfigHash: s.Spec.ConfigHash,
	}
	if e := s.LastExit; e != nil {
		f.LastExit = &ExitFile{Code: e.Code, Signal: e.Signal, At: e.At, OOMKilled: e.OOMKilled}
	}
	return f
}

// prepare makes the instance directory and config.json. output.log is
// opened by the output pump, off the start path.
func (in *supervised) prepare() error {
	in.noFolder = false
	if err := mkdirInstance(in.dir); err != nil {
		in.noFolder = true
		return fmt.Errorf("instance directory: %w", err)
	}
	if err := ensureSetupDir(in.r.opts.StateDir, in.id.Plug); err != nil {
		return err
	}
	planted, err := writeConfig(filepath.Join(in.dir, "config.json"), in.currentSpec().Config, 0o600)
	if planted != nil {
		in.r.log.Error("instance folder: a file planted in config.json's place replaced", "plug", in.id.Plug, "instance", in.id.Instance, "err", planted)
	}
	return err
}

// mkdirInstance makes an instance directory, and its plug's directory when
// it is the plug's first: one mkdir in the common case, where MkdirAll
// would stat every level first, and one lstat of the plug's directory,
// which must not be a symlink (checkPlugDir): the mkdir follows one.
func mkdirInstance(dir string) error {
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return err
		}
		err = os.Mkdir(dir, 0o700)
	}
	if errors.Is(err, fs.ErrExist) {
		fi, serr := os.Lstat(dir)
		switch {
		case serr != nil:
			return serr
		case !fi.IsDir():
			return fmt.Errorf("%s %s", dir, fileKind(fi.Mode()))
		}
		err = nil
	}
	if err != nil {
		return err
	}
	return checkPlugDir(dir)
}

// process is one running process of an instance, the leader of its own
// process group. The poller watches its exit and copies its output; the
// instance's goroutine reaps it.
type process struct {
	pid       int
	startedAt time.Time
	zombie    chan struct{}  // closed once it has exited, before it is reaped
	out       *outPipe       // its output pipe's read end
	box       *sandbox.Start // nil without a sandbox
	exit      *instance.Exit // set once reaped

	mu     sync.Mutex
	reaped bool
}

// startTime is the process's start time (/proc/<pid>/stat field 22),
// which identifies it with its pid in instance.json; 0 once it is reaped,
// when the pid may name another process.
func (p *process) startTime() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return 0
	}
	st, err := readProcStat(p.pid)
	if err != nil {
		return 0
	}
	return st.StartTime
}

// signalGroup sends sig to the process group, unless the leader is already
// reaped: its pid, and so the group id, may then belong to someone else.
func (p *process) signalGroup(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.reaped {
		_ = unix.Kill(-p.pid, sig)
	}
}

// spawn starts a process for the instance, its output pipe and the watch
// of its exit in the poller (poller.go).
//
// "starting" lasts until the fork returns and is only announced to the
// observer; on success the status is "running" in memory, and the caller
// reads the start time and persists it after answering Start, so that
// this work overlaps the caller's next start.
func (in *supervised) spawn() (*process, error) {
	in.notify(in.update(func(s *instance.Status) {
		s.State, s.Reason, s.PID, s.StartedAt = instance.StateStarting, "", 0, time.Time{}
	}))
	spec := in.currentSpec()
	path, attr, err := in.procAttr(spec)
	if err != nil {
		return nil, err
	}
	sp, err := in.r.spawnerFor(spec.Limits.NoNewPrivs)
	if err != nil {
		return nil, err
	}
	path, argv, box, err := in.sandboxed(spec, path, attr)
	if err != nil {
		return nil, err
	}
	in.pumps.Add(1)
	out, pw, err := newOutPipe(in.out, &in.r.bufs, in.pumps.Done)
	if err != nil {
		in.pumps.Done()
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	attr.Files = []*os.File{in.r.devNull, pw, pw}
	if box != nil {
		attr.Files = append(attr.Files, box.Files...)
	}
	// The pidfd the fork makes is the poller's (watchExit): one per
	// instance. A spawner thread with a table of its own makes none
	// (spawner.go), and watchExit opens it.
	pidfd := -1
	if pidfdWorks() {
		if attr.Sys == nil {
			attr.Sys = &syscall.SysProcAttr{}
		}
		attr.Sys.PidFD = &pidfd
	}
	pid, err := sp.spawn(path, argv, attr)
	pw.Close()
	if err != nil {
		if box != nil {
			_ = box.Started(err)
		}
		out.close()
		return nil, fmt.Errorf("start %s: %w", spec.Command[0], err)
	}
	// reap waits for the pid: a zombie's pid is not reused.
	p := &process{pid: pid, startedAt: in.r.clock.Now(), zombie: make(chan struct{}), out: out, box: box}
	watchExit(p.pid, pidfd, func() { close(p.zombie) })
	if err := in.sandboxStarted(box, p); err != nil {
		return nil, err
	}
	if err := applyLimits(p.pid, spec.Limits); err != nil {
		p.signalGroup(syscall.SIGKILL)
		in.waitExit(p)
		return nil, err
	}
	in.update(func(s *instance.Status) {
		s.State, s.Reason, s.PID, s.StartedAt = instance.StateRunning, "", p.pid, p.startedAt
	})
	return p, nil
}

// waitExit waits for p to exit and reaps it.
func (in *supervised) waitExit(p *process) instance.Exit {
	<-p.zombie
	return in.reap(p)
}

// reap finishes p once it has exited (p.zombie is closed): it kills what
// is left of its group while the leader is a zombie (so the group id
// cannot have been reused), reaps it and returns the exit. Only the
// instance's goroutine calls it; a second call returns the same exit.
func (in *supervised) reap(p *process) instance.Exit {
	if p.exit != nil {
		return *p.exit
	}
	// Nothing of an instance outlives its main process, whether it crashed
	// or was stopped. The leader is a zombie: its children are the
	// supervisor's now, so the target has no leader, and the group's
	// members that carry PLUGS_CONFIG are killed and waited for with what
	// left the group (setsid, double forks) while their environment is
	// still readable; then the group kill gets the rest.
	killAll(in.r.tracker, in.target(0))
	_ = unix.Kill(-p.pid, syscall.SIGKILL)
	p.mu.Lock()
	p.reaped = true
	p.mu.Unlock()
	ws, err := waitPid(p.pid)
	forked.remove(p.pid)
	// Writers left in other groups get outputGrace to finish.
	p.out.closeAfter(outputGrace)
	e := instance.Exit{Code: -1, At: in.r.clock.Now()}
	switch {
	case err != nil:
	case ws.Signaled():
		e.Signal = signalName(ws.Signal())
	case ws.Exited():
		e.Code = ws.ExitStatus()
	}
	in.sandboxExit(p.box, &e)
	p.exit = &e
	return e
}

// target names the processes of the instance for its Tracker.
func (in *supervised) target(leader int) Target {
	return Target{Leader: leader, Env: "PLUGS_CONFIG=" + filepath.Join(in.dir, "config.json")}
}

// stopProcess stops p: pre_stop when the stop was requested, stop signal,
// stop timeout (cut short by ctx), then SIGKILL; it returns once p is
// reaped.
func (in *supervised) stopProcess(ctx context.Context, p *process, restart, requested bool) instance.Exit {
	reason := "stop requested"
	switch {
	case restart:
		reason = "restart requested"
	case !requested:
		reason = "post_start failed"
	}
	stopping := in.update(func(s *instance.Status) { s.State, s.Reason = instance.StateStopping, reason })
	spec := in.currentSpec()
	preStop := requested && len(spec.Hooks.PreStop) > 0
	if preStop {
		in.persist(stopping)
		// Bounded by stop_timeout, and cut short with ctx; the stop
		// signal follows whatever it did.
		_ = in.runHook(ctx, "pre_stop", spec.Hooks.PreStop, spec.StopTimeout)
		select {
		case <-p.zombie: // pre_stop stopped it
			return in.reap(p)
		default:
		}
	}
	sig, err := parseSignal(spec.StopSignal)
	if err != nil {
		in.r.log.Warn("bad stop signal, using SIGTERM", "plug", in.id.Plug, "err", err)
	}
	timeout := spec.StopTimeout // the render filled its default
	p.signalGroup(sig)
	// The observers learn of the stop at once; instance.json says
	// "stopping" only if the process is still there stoppingFileAfter
	// later: most exit at the signal, and then the file goes from running
	// to stopped in one write, not two (a stop of 1,000 writes 1,000 files
	// fewer).
	var slow <-chan struct{}
	if !preStop {
		in.notify(stopping)
		lag := make(chan struct{})
		slow = lag
		lt := in.r.clock.AfterFunc(min(stoppingFileAfter, timeout), func() { close(lag) })
		defer lt.Stop()
	}
	_, _ = in.r.tracker.Signal(in.target(p.pid), sig)
	expired := make(chan struct{})
	t := in.r.clock.AfterFunc(timeout, func() { close(expired) })
	defer t.Stop()
	for waiting := true; waiting; {
		select {
		case <-p.zombie:
			return in.reap(p)
		case <-slow:
			slow = nil
			// Both may be ready when this goroutine ran late (a stop of
			// 1,000 on two cores): an exited process goes to stopped in
			// one write.
			select {
			case <-p.zombie:
				return in.reap(p)
			default:
			}
			in.writeState(stopping)
		case <-expired:
			in.r.log.Warn("stop timeout, killing", "plug", in.id.Plug, "instance", in.id.Instance, "pid", p.pid)
			waiting = false
		case <-ctx.Done():
			waiting = false
		}
	}
	if slow != nil {
		in.writeState(stopping)
	}
	p.signalGroup(syscall.SIGKILL)
	return in.waitExit(p)
}

// procAttr resolves the executable and the environment of the instance.
func (in *supervised) procAttr(spec instance.Spec) (string, *os.ProcAttr, error) {
	if len(spec.Command) == 0 {
		return "", nil, errors.New("no command")
	}
	fi, err := os.Stat(spec.Dir)
	if err != nil {
		return "", nil, fmt.Errorf("working directory: %w", err)
	}
	if !fi.IsDir() {
		return "", nil, fmt.Errorf("working directory %s: not a directory", spec.Dir)
	}
	cred, who, err := credential(spec.User, spec.Group)
	if err != nil {
		return "", nil, err
	}
	envv := in.r.environ(spec, who)
	path, err := resolveCommand(spec.Dir, spec.Command[0], envValue(envv, "PATH"))
	if err != nil {
		return "", nil, err
	}
	sys := &syscall.SysProcAttr{Credential: cred}
	return path, &os.ProcAttr{Dir: spec.Dir, Env: envv, Sys: sys}, nil
}

// credential resolves User and Group. Switching needs root; running as the
// current user is always allowed.
func credential(userName, groupName string) (*syscall.Credential, *account, error) {
	if userName == "" && groupName == "" {
		return nil, nil, nil
	}
	var who *account
	uid, gid := os.Getuid(), os.Getgid()
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			return nil, nil, fmt.Errorf("user %s: %w", userName, err)
		}
		who = &account{name: u.Username, home: u.HomeDir}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			return nil, nil, fmt.Errorf("group %s: %w", groupName, err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if uid == os.Getuid() && gid == os.Getgid() {
		return nil, nil, nil
	}
	if os.Geteuid() != 0 {
		return nil, nil, fmt.Errorf("run as %s:%s: needs root", userName, groupName)
	}
	if uid == os.Getuid() {
		who = nil // only the group changes: the environment stays the daemon's user's
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, who, nil
}

// applyLimits sets the rlimits of a just-started process. prlimit(2) on
// the child right after the fork: a program sees them from its first
// instructions only if it does not race the parent, which is acceptable
// for the resource caps they are (see the package README).
func applyLimits(pid int, l instance.Limits) error {
	for _, lim := range []struct {
		res  int
		val  uint64
		name string
	}{
		{unix.RLIMIT_NOFILE, l.NoFile, "open files"},
		{unix.RLIMIT_AS, l.AddrSpace, "address space"},
		{unix.RLIMIT_NPROC, l.NProc, "processes"},
	} {
		if lim.val == 0 {
			continue
		}
		rl := unix.Rlimit{Cur: lim.val, Max: lim.val}
		if err := unix.Prlimit(pid, lim.res, &rl, nil); err != nil {
			return fmt.Errorf("limit %s: %w", lim.name, err)
		}
	}
	return nil
}

// parseSignal and signalName are internal/signame's rules.
func parseSignal(name string) (syscall.Signal, error) { return signame.Parse(name) }

func signalName(s syscall.Signal) string { return signame.Name(s) }
