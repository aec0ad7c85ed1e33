package task

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/clock"
	"github.com/plugs-dev/plugs/internal/layout"
)

// Observer is told about runs as they end; metrics.Metrics implements it.
// Its methods must not block.
type Observer interface {
	// TaskRun counts one run of plug with its result and duration;
	// lastSuccess is the end of the plug's last successful run (zero: none).
	TaskRun(plug, result string, duration time.Duration, lastSuccess time.Time)
	// TaskSkipped counts a run that did not start (SkipOverlap, SkipBusy).
	TaskSkipped(plug, reason string)
	// TaskKnown announces a task plug and its last success from the
	// history on disk; TaskForget drops a plug that is no longer a task.
	TaskKnown(plug string, lastSuccess time.Time)
	TaskForget(plug string)
}

// Options configure a Manager.
type Options struct {
	Runner Runner
	// StateDir holds tasks/<plug>/runs.json, schedule.json and the input
	// files of running calls; "" keeps everything in memory (tests).
	StateDir string
	Clock    clock.Clock    // default clock.New()
	Location *time.Location // the host's time zone for cron; default time.Local
	Observer Observer       // optional
	// OnResult, if set, is called after every run (e.g. to publish the last
	// run on MQTT). It must not block.
	OnResult func(Result)
	// OnChange, if set, is called when a run of an instance starts and
	// after it ended (Status tells the new state). It must not block.
	OnChange func(ID)
	Logger   *slog.Logger
}

// Manager runs the task instances it is given: on call (Exec) and on their
// schedules. It is safe for concurrent use.
type Manager struct {
	opts  Options
	sched *scheduler

	ctx    context.Context // ends with Close: scheduled runs stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // scheduled runs and the scheduler

	mu    sync.Mutex
	plugs map[string]*plugState
}

// plugState is the admission and history of one task plug.
type plugState struct {
	name    string
	cfg     Config
	targets map[string]Target // by instance name
	hist    *history

	// Admission: active runs hold a slot; waiters queue in FIFO order for one.
	active   int
	waiters  []*waiter
	inflight map[string]int // running or queued, per instance (overlap check)
	running  map[string]int // running, per instance
	// recent durations, for Retry-After
	avg time.Duration
}

// NewManager returns a Manager with no tasks; Update gives it some. Its
// scheduler runs until Close.
func NewManager(opts Options) *Manager {
	if opts.Clock == nil {
		opts.Clock = clock.New()
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{opts: opts, plugs: map[string]*plugState{}}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.sched = newScheduler(opts.Clock, opts.Location, opts.StateDir, m.fireScheduled, opts.Logger)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.sched.run(m.ctx)
	}()
	return m
}

// Close stops the scheduler and waits for the scheduled runs, whose
// processes are stopped (their context ends). Calls in flight end with their
// callers' contexts.
func (m *Manager) Close() {
	m.cancel()
	m.wg.Wait()
}

// Update replaces the set of task instances with the specs whose Task is
// set (the others are services and ignored). Runs in flight finish with the
// spec they started with; a plug no longer listed is forgotten (its history
// stays on disk). The returned error names schedules that could not be
// armed; the other tasks are updated regardless.
func (m *Manager) Update(specs []instance.Spec) error {
	byPlug := map[string][]Target{}
	for _, s := range specs {
		if s.Task != nil {
			byPlug[s.ID.Plug] = append(byPlug[s.ID.Plug], Target{Spec: s, Config: s.Task.WithDefaults()})
		}
	}
	var errs []error
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, ps := range m.plugs {
		if _, ok := byPlug[name]; !ok {
			delete(m.plugs, name)
			m.sched.removePlugExcept(name, nil)
			if m.opts.Observer != nil {
				m.opts.Observer.TaskForget(name)
			}
			_ = ps
		}
	}
	for _, name := range slices.Sorted(maps.Keys(byPlug)) {
		ts := byPlug[name]
		cfg := ts[0].Config
		ps, ok := m.plugs[name]
		if !ok {
			h, err := loadHistory(historyPath(m.opts.StateDir, name), cfg.History)
			if err != nil {
				m.opts.Logger.Warn("task history unreadable, starting afresh", "plug", name, "err", err)
			}
			ps = &plugState{name: name, hist: h, inflight: map[string]int{}, running: map[string]int{}}
			m.plugs[name] = ps
			if m.opts.Observer != nil {
				m.opts.Observer.TaskKnown(name, h.success())
			}
		}
		ps.cfg = cfg
		ps.hist.setLimit(cfg.History)
		ps.targets = map[string]Target{}
		keep := map[string]bool{}
		for _, t := range ts {
			ps.targets[t.Spec.ID.Instance] = t
			keep[t.Spec.ID.Instance] = true
			if err := m.sched.set(t.Spec.ID, t.Config.Schedules); err != nil {
				errs = append(errs, fmt.Errorf("task %s: %w", t.Spec.ID, err))
			}
		}
		m.sched.removePlugExcept(name, keep)
		m.grantLocked(ps) // a raised max_concurrent admits waiters now
	}
	return errors.Join(errs...)
}

// lookup finds the target of plug/instance ("" instance: the only one, or "default").
func (m *Manager) lookupLocked(plug, instance string) (*plugState, Target, error) {
	ps, ok := m.plugs[plug]
	if !ok {
		return nil, Target{}, fmt.Errorf("%w: plug %q is not a task", ErrNotFound, plug)
	}
	if instance == "" {
		if len(ps.targets) == 1 {
			for _, t := range ps.targets {
				return ps, t, nil
			}
		}
		instance = "default"
		if _, ok := ps.targets[instance]; !ok {
			names := slices.Sorted(maps.Keys(ps.targets))
			return nil, Target{}, fmt.Errorf("%w: plug %s has several instances (%s): name one as %s/INSTANCE",
				ErrNotFound, plug, strings.Join(names, ", "), plug)
		}
	}
	t, ok := ps.targets[instance]
	if !ok {
		return nil, Target{}, fmt.Errorf("%w: plug %s has no instance %q", ErrNotFound, plug, instance)
	}
	return ps, t, nil
}

// Exec runs plug/instance once with req's input and returns its result. A
// result whose process failed is not an error; errors are ErrNotFound,
// *InputError, *BusyError, or the end of ctx while queued. Ending ctx
// while the process runs stops it (as a timeout does).
func (m *Manager) Exec(ctx context.Context, req Request) (*Result, error) {
	if req.Trigger == "" {
		req.Trigger = TriggerCall
	}
	m.mu.Lock()
	ps, t, err := m.lookupLocked(req.Plug, req.Instance)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	cfg := ps.cfg
	m.mu.Unlock()
	run, err := runSettings(cfg, req)
	if err != nil {
		return nil, err
	}
	if err := m.admit(ctx, ps, t.Spec.ID.Instance); err != nil {
		return nil, err
	}
	defer m.release(ps, t.Spec.ID.Instance)
	r := m.runOne(ctx, ps, t, run, req.Trigger)
	return &r, nil
}

// runSettings checks req against the plug's limits.
func runSettings(cfg Config, req Request) (Run, error) {
	run := Run{Input: req.Input, Timeout: cfg.Timeout, MaxOutput: cfg.OutputLimit}
	if len(req.Input) > MaxInput {
		return run, &InputError{fmt.Sprintf("input of %d bytes is larger than the limit of %d", len(req.Input), MaxInput)}
	}
	if req.Timeout < 0 || req.MaxOutput < 0 {
		return run, &InputError{"timeout and max_output must not be negative"}
	}
	if req.Timeout > 0 {
		if req.Timeout > cfg.MaxTimeout {
			return run, &InputError{fmt.Sprintf("timeout %s is above the plug's max_timeout %s", req.Timeout, cfg.MaxTimeout)}
		}
		run.Timeout = req.Timeout
	}
	if req.MaxOutput > 0 {
		if req.MaxOutput > cfg.MaxOutput {
			return run, &InputError{fmt.Sprintf("max_output %d is above the plug's limit of %d bytes", req.MaxOutput, cfg.MaxOutput)}
		}
		run.MaxOutput = req.MaxOutput
	}
	return run, nil
}

// admit takes a run slot of ps for instance, queueing when all are taken
// and the queue has room.
func (m *Manager) admit(ctx context.Context, ps *plugState, instance string) error {
	m.mu.Lock()
	if ps.active < ps.cfg.MaxConcurrent && len(ps.waiters) == 0 {
		ps.active++
		ps.inflight[instance]++
		ps.running[instance]++
		m.mu.Unlock()
		return nil
	}
	if len(ps.waiters) >= max(ps.cfg.Queue, 0) {
		err := &BusyError{Plug: ps.name, MaxConcurrent: ps.cfg.MaxConcurrent, Queue: len(ps.waiters), RetryAfter: retryAfter(ps)}
		m.mu.Unlock()
		if m.opts.Observer != nil {
			m.opts.Observer.TaskSkipped(ps.name, SkipBusy)
		}
		return err
	}
	w := &waiter{ch: make(chan struct{}), instance: instance}
	ps.waiters = append(ps.waiters, w)
	ps.inflight[instance]++
	m.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		m.mu.Lock()
		defer m.mu.Unlock()
		ps.inflight[instance]--
		if i := slices.Index(ps.waiters, w); i >= 0 {
			ps.waiters = slices.Delete(ps.waiters, i, i+1)
			return fmt.Errorf("waiting for a free run slot of %s: %w", ps.name, ctx.Err())
		}
		// Granted meanwhile: pass the slot on.
		ps.active--
		ps.running[instance]--
		m.grantLocked(ps)
		return fmt.Errorf("waiting for a free run slot of %s: %w", ps.name, ctx.Err())
	}
}

func (m *Manager) release(ps *plugState, instance string) {
	if m.opts.OnChange != nil {
		defer m.opts.OnChange(ID{Plug: ps.name, Instance: instance}) // after the unlock: Status says idle
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ps.inflight[instance]--
	if ps.inflight[instance] <= 0 {
		delete(ps.inflight, instance)
	}
	ps.running[instance]--
	if ps.running[instance] <= 0 {
		delete(ps.running, instance)
	}
	ps.active--
	m.grantLocked(ps)
}

// grantLocked hands free slots to waiters, first come first served.
func (m *Manager) grantLocked(ps *plugState) {
	for ps.active < ps.cfg.MaxConcurrent && len(ps.waiters) > 0 {
		w := ps.waiters[0]
		ps.waiters = ps.waiters[1:]
		ps.active++
		ps.running[w.instance]++
		close(w.ch)
	}
}

type waiter struct {
	ch       chan struct{}
	instance string
}

// retryAfter estimates when a queued call would start: the average run time
// times the rounds ahead, at least a second.
func retryAfter(ps *plugState) time.Duration {
	rounds := float64(len(ps.waiters)+1) / float64(ps.cfg.MaxConcurrent)
	d := time.Duration(math.Ceil(rounds*ps.avg.Seconds()) * float64(time.Second))
	return max(d, time.Second)
}

// fireScheduled starts a scheduled run in the background.
func (m *Manager) fireScheduled(id ID, s Schedule, trigger Trigger) bool {
	m.mu.Lock()
	ps, t, err := m.lookupLocked(id.Plug, id.Instance)
	if err != nil {
		m.mu.Unlock()
		return false
	}
	if !s.Overlap && ps.inflight[id.Instance] > 0 {
		m.mu.Unlock()
		m.opts.Logger.Info("task run skipped: the previous one still runs", "task", id.String(), "schedule", s.String())
		if m.opts.Observer != nil {
			m.opts.Observer.TaskSkipped(id.Plug, SkipOverlap)
		}
		return false
	}
	cfg := ps.cfg
	m.mu.Unlock()
	run, _ := runSettings(cfg, Request{Input: []byte(s.Input)})
	if err := m.admit(m.ctx, ps, id.Instance); err != nil {
		m.opts.Logger.Info("task run skipped", "task", id.String(), "schedule", s.String(), "err", err)
		return false
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer m.release(ps, id.Instance)
		m.runOne(m.ctx, ps, t, run, trigger)
	}()
	return true
}

// runOne runs t once through the Runner and records the result.
func (m *Manager) runOne(ctx context.Context, ps *plugState, t Target, run Run, trigger Trigger) Result {
	run.ID = newRunID(m.opts.Clock.Now().Round(0))
	r := Result{RunID: run.ID, Plug: t.Spec.ID.Plug, Instance: t.Spec.ID.Instance, Trigger: trigger}
	inputPath, err := m.writeInput(t.Spec.ID, run.ID, run.Input)
	if err == nil {
		run.Env = map[string]string{"PLUGS_INPUT": inputPath, "PLUGS_RUN_ID": run.ID, "PLUGS_TRIGGER": string(trigger)}
		var out Outcome
		if m.opts.OnChange != nil {
			m.opts.OnChange(t.Spec.ID)
		}
		out, err = m.opts.Runner.RunOnce(ctx, t.Spec, run)
		if inputPath != "" {
			os.Remove(inputPath)
		}
		if err == nil {
			r.ExitCode, r.Signal, r.OOMKilled = out.ExitCode, out.Signal, out.OOMKilled
			r.StartedAt, r.Duration = out.StartedAt.Round(0), out.Duration.Seconds()
			r.setOutput(out.Output, out.OutputTruncated)
			r.StderrTail = tail(out.Stderr, StderrTail)
			switch {
			case out.TimedOut:
				r.Result = ResultTimeout
			case out.ExitCode == 0 && out.Signal == "":
				r.Result = ResultSuccess
			default:
				r.Result = ResultFailure
			}
		}
	}
	if err != nil {
		r.Result, r.ExitCode, r.Error = ResultError, -1, err.Error()
		r.StartedAt = m.opts.Clock.Now().Round(0)
		r.setOutput(nil, false)
	}
	last, herr := ps.hist.add(r)
	if herr != nil {
		m.opts.Logger.Warn("save task history", "plug", ps.name, "err", herr)
	}
	m.mu.Lock()
	d := time.Duration(r.Duration * float64(time.Second))
	if ps.avg == 0 {
		ps.avg = d
	} else {
		ps.avg = (ps.avg*7 + d) / 8
	}
	m.mu.Unlock()
	if m.opts.Observer != nil {
		m.opts.Observer.TaskRun(ps.name, r.Result, d, last)
	}
	if m.opts.OnResult != nil {
		m.opts.OnResult(r)
	}
	lvl := slog.LevelInfo
	if r.Result != ResultSuccess {
		lvl = slog.LevelWarn
	}
	m.opts.Logger.Log(ctx, lvl, "task run", "task", t.Spec.ID.String(), "run_id", r.RunID, "trigger", string(trigger),
		"result", r.Result, "exit_code", r.ExitCode, "duration", d)
	return r
}

// writeInput writes a run's input where PLUGS_INPUT points (mode 0600).
func (m *Manager) writeInput(id ID, runID string, input []byte) (string, error) {
	dir := layout.TaskInput(m.opts.StateDir, id.Plug)
	if m.opts.StateDir == "" {
		dir = filepath.Join(os.TempDir(), "plugs-task-input")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("write input: %w", err)
	}
	path := filepath.Join(dir, id.Instance+"-"+runID)
	if err := os.WriteFile(path, input, 0o600); err != nil {
		return "", fmt.Errorf("write input: %w", err)
	}
	return path, nil
}

func newRunID(now time.Time) string {
	return now.UTC().Format("20060102T150405Z") + "-" + strings.ToLower(rand.Text()[:8])
}

// tail returns the last n bytes of b, cut at a line start when one is near.
func tail(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	b = b[len(b)-n:]
	if i := strings.IndexByte(string(b), '\n'); i >= 0 && i < 256 {
		b = b[i+1:]
	}
	return string(b)
}

// Runs returns up to n runs of plug (instance "": all), newest first, from
// the history. ErrNotFound when plug is not a task.
func (m *Manager) Runs(plug, instance string, n int) ([]Result, error) {
	m.mu.Lock()
	ps, ok := m.plugs[plug]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: plug %q is not a task", ErrNotFound, plug)
	}
	return ps.hist.list(instance, n), nil
}

// Status is the state of one task instance.
type Status struct {
	ID       ID
	Running  int // runs in progress
	Queued   int // calls of the plug waiting for a slot (all instances)
	LastRun  *Result
	Schedule []string
}

// Status returns every task instance's status, sorted.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	var out []Status
	var hists []*history
	for _, ps := range m.plugs {
		for name, t := range ps.targets {
			st := Status{ID: t.Spec.ID, Running: ps.running[name], Queued: len(ps.waiters)}
			for _, s := range t.Config.Schedules {
				st.Schedule = append(st.Schedule, s.String())
			}
			out = append(out, st)
			hists = append(hists, ps.hist)
		}
	}
	m.mu.Unlock()
	for i := range out {
		out[i].LastRun = hists[i].last(out[i].ID.Instance)
	}
	slices.SortFunc(out, func(a, b Status) int { return compareID(a.ID, b.ID) })
	return out
}

// IsTask reports whether plug is a task here.
func (m *Manager) IsTask(plug string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.plugs[plug]
	return ok
}
