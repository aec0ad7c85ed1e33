package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/clock"
	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/plugs-dev/plugs/internal/names"
)

var (
	_ instance.Executor = (*Runner)(nil)
	_ instance.Updater  = (*Runner)(nil)
)

// Options configure a Runner.
type Options struct {
	// StateDir is the state directory; instance files live in
	// StateDir/instances/<plug>/<instance>/.
	StateDir string
	// Logger receives lifecycle events; nil discards them.
	Logger *slog.Logger
	// Sandbox confines every instance (sandbox.go); nil: none.
	Sandbox Sandboxer
	// Clock drives backoff and stop timeouts; nil is the wall clock.
	Clock clock.Clock
	// Observer receives every status change, from a goroutine of its own:
	// it may be slow, and then sees only the latest status of an instance.
	Observer func(instance.Status)
	// LogMaxSize and LogBackups bound output.log: at most
	// LogMaxSize*(LogBackups+1) bytes per instance. Zero means 10 MiB and 3.
	LogMaxSize int64
	LogBackups int
	// Rand returns floats in [0,1) for backoff jitter; nil is math/rand/v2.
	Rand func() float64
	// Environ is the daemon's environment, from which instances receive
	// PassedEnv alone (see env.go); nil is os.Environ().
	Environ []string
	// Tracker finds the processes of an instance that left its process
	// group; nil is ProcTracker, which needs the subreaper role New takes.
	Tracker Tracker
	// Verify, when set, is called before every start of a process (the
	// first, and each restart after a crash): the daemon checks there that
	// the plugin tree is still the one the lock pins (fetch's cheap
	// fingerprint), so that a tree modified in the store is never run. Its
	// error is a failed start, with the error as the reason.
	Verify func(instance.Spec) error
	// StartAfter, when set, holds every Start and Remove until it is
	// closed (or their ctx ends): the daemon runs CleanupStale, which must
	// finish before the first instance file is written or removed, beside
	// the rest of its start-up (the broker, the listeners, loading
	// plugs.hcl).
	StartAfter <-chan struct{}
	// AwaitReady, when set, blocks until a started process is ready (the
	// health checks' readiness) or ctx ends; post_start runs after it
	// returns nil. nil means a process is ready once it is forked.
	AwaitReady func(ctx context.Context, id instance.ID, pid int) error
}

// Runner supervises instances: one goroutine per instance, event driven.
// It implements instance.Executor.
type Runner struct {
	opts     Options
	log      *slog.Logger
	clock    clock.Clock
	devNull  *os.File
	spawner  *spawner
	notifier *notifier
	reaper   *reaper
	tracker  Tracker
	bufs     sync.Pool // output read buffers, shared by all instances
	baseEnv  map[string]string

	nnpOnce    sync.Once
	nnpSpawner *spawner
	nnpErr     error

	housekeep housekeeper // file work after the starts pause (housekeep.go)

	mu     sync.Mutex
	insts  map[instance.ID]*supervised
	sorted []*supervised // insts in id order, for Observe
	closed bool
}

// New returns a Runner. It makes the process a child subreaper (see
// procs.go), starts the spawner threads (see spawner), the reaper of
// adopted orphans and, when Options.Observer is set, the notifier
// goroutine; Close stops them.
func New(opts Options) (*Runner, error) {
	if opts.StateDir == "" {
		return nil, errors.New("runner: no state directory")
	}
	abs, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	opts.StateDir = abs
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.New()
	}
	if opts.LogMaxSize <= 0 {
		opts.LogMaxSize = DefaultLogMaxSize
	}
	if opts.LogBackups <= 0 {
		opts.LogBackups = DefaultLogBackups
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	if opts.Environ == nil {
		opts.Environ = os.Environ()
	}
	if opts.Tracker == nil {
		opts.Tracker = &ProcTracker{}
	}
	if err := os.MkdirAll(layout.Instances(abs), 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	// Orphans of instances reparent to this process, not init (procs.go).
	if err := becomeSubreaper(); err != nil {
		opts.Logger.Warn("cannot become a child subreaper: processes an instance moves out of its group may outlive it", "err", err)
	}
	sp, err := newSpawner(false, spawnerThreads())
	if err != nil {
		releaseSubreaper()
		devNull.Close()
		return nil, err
	}
	r := &Runner{
		opts:    opts,
		log:     opts.Logger,
		clock:   opts.Clock,
		devNull: devNull,
		spawner: sp,
		baseEnv: passedEnv(opts.Environ),
		tracker: opts.Tracker,
		reaper:  startReaper(),
		insts:   map[instance.ID]*supervised{},
	}
	if opts.Observer != nil {
		r.notifier = newNotifier(opts.Observer)
	}
	if fi, err := os.Lstat(layout.Removed(abs)); err == nil && fi.IsDir() {
		// Folders of removed instances a crash left (discard).
		r.housekeep.add(func() { r.deleteRemoved(layout.Removed(abs)) })
	}
	return r, nil
}

// InstanceDir is the directory of an instance's files.
func InstanceDir(stateDir string, id instance.ID) string {
	return layout.InstanceDir(stateDir, id.Plug, id.Instance)
}

// Start starts an instance and returns once its first process is spawned.
// When it cannot be (missing executable, bad directory, a pre_start that
// failed or timed out...) the instance stays known as failed, without a
// process and not retried, and the error says why: the caller decides
// what follows (reconcile.Apply rolls a replace back by a Start of the
// previous spec over it); ctx ends a hanging pre_start. Only the later
// starts (after a crash, a failed post_start, Restart) retry a failed
// pre_start with backoff. Starting an instance that is already running is
// an error; starting a failed, backing-off or needs-setup one replaces it.
func (r *Runner) Start(ctx context.Context, spec instance.Spec) error {
	if err := validID(spec.ID); err != nil {
		return err
	}
	if err := r.startAfter(ctx); err != nil {
		return fmt.Errorf("start %s: %w", spec.ID, err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errors.New("runner closed")
	}
	old := r.insts[spec.ID]
	r.mu.Unlock()
	if old != nil {
		// A failed, backing-off or parked instance is replaced (a failed
		// replace's rollback starts the previous spec over it).
		if st := old.state(); st != instance.StateFailed && st != instance.StateNeedsSetup && st != instance.StateBackoff {
			return fmt.Errorf("start %s: already %s", spec.ID, st)
		}
		if err := r.Stop(ctx, spec.ID); err != nil {
			return err
		}
	}
	in := newInstance(r, spec)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errors.New("runner closed")
	}
	if r.insts[spec.ID] != nil {
		r.mu.Unlock()
		return fmt.Errorf("start %s: started concurrently", spec.ID)
	}
	r.insts[spec.ID] = in
	i, _ := slices.BinarySearchFunc(r.sorted, spec.ID, func(e *supervised, id instance.ID) int { return compareIDs(e.id, id) })
	r.sorted = slices.Insert(r.sorted, i, in)
	r.mu.Unlock()
	first := make(chan error, 1)
	go in.run(ctx, first)
	if err := <-first; err != nil {
		return fmt.Errorf("start %s: %w", spec.ID, err)
	}
	return nil
}

// startAfter waits for Options.StartAfter.
func (r *Runner) startAfter(ctx context.Context) error {
	if r.opts.StartAfter == nil {
		return nil
	}
	select {
	case <-r.opts.StartAfter:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func validID(id instance.ID) error {
	for _, s := range []string{id.Plug, id.Instance} {
		if !names.PathElement(s) {
			return fmt.Errorf("invalid instance id %q", id.String())
		}
	}
	return nil
}

// Stop stops an instance and forgets it: stop signal to its process group,
// StopTimeout (cut short when ctx ends), then SIGKILL; it returns once the
// process is reaped. Its files stay, marked stopped. Stopping an unknown
// instance is a no-op.
func (r *Runner) Stop(ctx context.Context, id instance.ID) error {
	return r.stop(ctx, id, false)
}

// stop is Stop; with remove, the final state is not written (Remove).
func (r *Runner) stop(ctx context.Context, id instance.ID, remove bool) error {
	r.mu.Lock()
	in := r.insts[id]
	r.mu.Unlock()
	if in == nil {
		return nil
	}
	_ = in.send(ctlMsg{ctx: ctx, remove: remove, reply: make(chan error, 1)})
	<-in.done
	r.mu.Lock()
	if r.insts[id] == in {
		delete(r.insts, id)
		if i, ok := slices.BinarySearchFunc(r.sorted, id, func(e *supervised, id instance.ID) int { return compareIDs(e.id, id) }); ok {
			r.sorted = slices.Delete(r.sorted, i, i+1)
		}
	}
	r.mu.Unlock()
	return nil
}

var _ instance.Remover = (*Runner)(nil)

// Remove stops an instance like Stop, then deletes its directory:
// config.json (which holds secrets), instance.json and output.log with
// its backups. It is for an instance deleted from the deployment; a
// replace or a daemon stop keeps the files. Removing an unknown instance
// deletes its directory all the same.
func (r *Runner) Remove(ctx context.Context, id instance.ID) error {
	if err := validID(id); err != nil {
		return err
	}
	if err := r.startAfter(ctx); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	if err := r.stop(ctx, id, true); err != nil {
		return err
	}
	dir := InstanceDir(r.opts.StateDir, id)
	if err := r.discard(dir); err != nil {
		return fmt.Errorf("remove %s: %w", id, err)
	}
	_ = os.Remove(filepath.Dir(dir)) // the plug's folder, once empty
	return nil
}

// discard takes dir out of the instances' folder at once, by a rename
// into the state directory's removed/ folder, and leaves its deletion to
// the housekeeper, after the starts pause: the deletes of a reconcile
// come before its starts, and on ext4 without a journal every inode
// created within 30 s of a deletion is slow to find (the allocator skips
// the recently deleted ones, reading each one's inode table block), so
// that 100 deletions made the 100 creates after them slower. Where the
// rename cannot be made (removed/ is not a folder of its own, another
// file system), dir is deleted here. What is left in removed/ by a crash
// is deleted by the next runner (New).
func (r *Runner) discard(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// A plug's folder that is a symlink is not followed: what it names is
	// not the state directory's to delete (checkPlugDir). Remove then
	// unlinks the link alone.
	if err := checkPlugDir(dir); err != nil {
		r.log.Warn("the folder of a removed instance not deleted", "path", dir, "err", err)
		return nil
	}
	trash := layout.Removed(r.opts.StateDir)
	if err := os.Mkdir(trash, 0o700); err == nil || errors.Is(err, fs.ErrExist) {
		if fi, err := os.Lstat(trash); err == nil && fi.IsDir() {
			to := filepath.Join(trash, filepath.Base(filepath.Dir(dir))+"."+filepath.Base(dir)+"."+strconv.FormatUint(rand.Uint64(), 36))
			if os.Rename(dir, to) == nil {
				r.housekeep.add(func() { r.deleteRemoved(to) })
				return nil
			}
		}
	}
	return os.RemoveAll(dir)
}

// deleteRemoved deletes what discard moved to removed/ (housekeeper).
func (r *Runner) deleteRemoved(name string) {
	if err := os.RemoveAll(name); err != nil {
		r.log.Warn("delete the folder of a removed instance", "path", name, "err", err)
	}
}

// Update applies spec to a known instance without restarting it: the
// planner calls it only for changes the process does not see (stop signal
// and timeout, restart policy, depends_on, metadata). The next process of
// the instance, after a crash or Restart, runs with spec.
func (r *Runner) Update(ctx context.Context, spec instance.Spec) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := r.insts[spec.ID]
	if in == nil {
		return fmt.Errorf("update %s: no such instance", spec.ID)
	}
	in.status.Spec = spec
	return nil
}

// Restart stops an instance's process and starts a new one with the same
// spec, without backoff. It returns once the new process is spawned.
func (r *Runner) Restart(ctx context.Context, id instance.ID) error {
	r.mu.Lock()
	in := r.insts[id]
	r.mu.Unlock()
	if in == nil {
		return fmt.Errorf("restart %s: no such instance", id)
	}
	if err := in.control(ctx, true); err != nil {
		return fmt.Errorf("restart %s: %w", id, err)
	}
	return nil
}

// Observe returns the status of every instance, sorted by id. It does no
// I/O and allocates only the slice it returns: the statuses are copied
// once, under the lock, in the order the runner keeps (sorted; a sort on
// every call took most of its ~1.2 ms at 1,000 instances).
func (r *Runner) Observe() []instance.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]instance.Status, len(r.sorted))
	for i, in := range r.sorted {
		out[i] = in.status
	}
	return out
}

func compareIDs(a, b instance.ID) int {
	if c := strings.Compare(a.Plug, b.Plug); c != 0 {
		return c
	}
	return strings.Compare(a.Instance, b.Instance)
}

// Close stops every instance in reverse dependency order: instances of
// plugs nothing depends on first, each level in parallel. When ctx ends,
// the remaining stop timeouts are cut short (SIGKILL). Then it stops the
// runner's goroutines and its spawner thread.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	insts := make([]*supervised, 0, len(r.insts))
	for _, in := range r.insts {
		insts = append(insts, in)
	}
	levels := stopLevels(insts)
	r.mu.Unlock()

	for _, level := range levels {
		var wg sync.WaitGroup
		for _, in := range level {
			wg.Go(func() { _ = r.Stop(ctx, in.id) })
		}
		wg.Wait()
	}
	r.spawner.stop()
	r.housekeep.close()
	r.nnpOnce.Do(func() {}) // no new no_new_privs spawner after this
	if r.nnpSpawner != nil {
		r.nnpSpawner.stop()
	}
	if r.notifier != nil {
		r.notifier.close()
	}
	r.reaper.stop()
	releaseSubreaper()
	return r.devNull.Close()
}

// stopLevels orders instances for shutdown: the depends_on levels of
// instance.Levels, highest first, so that dependents stop before what
// they depend on.
func stopLevels(insts []*supervised) [][]*supervised {
	deps := map[string][]string{}
	for _, in := range insts {
		deps[in.id.Plug] = append(deps[in.id.Plug], in.status.Spec.DependsOn...)
	}
	levels := instance.ByLevel(insts, instance.Levels(deps), func(in *supervised) string { return in.id.Plug })
	slices.Reverse(levels)
	return levels
}

// spawnerThreads is the number of threads that fork plain instances: one
// per CPU the runtime uses, so that forks of parallel starts overlap.
func spawnerThreads() int {
	return max(1, min(runtime.GOMAXPROCS(0), 8))
}

// spawnerFor returns the spawner for an instance: a separate thread with
// no_new_privs set for instances that ask for it.
func (r *Runner) spawnerFor(noNewPrivs bool) (*spawner, error) {
	if !noNewPrivs {
		return r.spawner, nil
	}
	r.nnpOnce.Do(func() {
		r.mu.Lock()
		closed := r.closed
		r.mu.Unlock()
		if closed {
			r.nnpErr = errors.New("runner closed")
			return
		}
		r.nnpSpawner, r.nnpErr = newSpawner(true, 1)
	})
	if r.nnpSpawner == nil && r.nnpErr == nil {
		return nil, errors.New("runner closed")
	}
	return r.nnpSpawner, r.nnpErr
}
