package reconcile

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plugs-dev/plugs/internal/clock"
)

// Default loop timings.
const (
	DefaultDebounce = 250 * time.Millisecond
	// A burst of triggers delays a reconcile by at most this many debounces.
	maxWaitDebounces = 10
)

// LoopOptions configure a Loop.
type LoopOptions struct {
	// Reconcile does one whole reconcile (load, plan, apply). reason joins
	// the reasons of the triggers it serves, e.g. "plugs.hcl changed, SIGHUP".
	Reconcile func(ctx context.Context, reason string) error
	// Debounce is how long the loop waits after the last trigger of a burst
	// before reconciling (default DefaultDebounce). A continuous burst still
	// reconciles every 10 debounces.
	Debounce time.Duration
	// Interval, when positive, reconciles that long after the last reconcile
	// even without a trigger (reason "interval"): the retry of a failed
	// reconcile and the poll of sources that cannot be watched.
	Interval time.Duration
	Clock    clock.Clock  // nil: clock.New(); tests use testing/synctest
	Logger   *slog.Logger // nil: discard
}

// LastResult is the outcome of the last reconcile a Loop ran.
type LastResult struct {
	At       time.Time // when it finished; zero before the first
	Reason   string
	Duration time.Duration
	Err      error
	Runs     int // reconciles run so far
}

// Loop runs reconciles one at a time on triggers: it debounces bursts of
// triggers (an editor's saves, a flurry of fsnotify events) into few
// reconciles, never drops the last one, and retries after an error at the
// next trigger or interval. It does no I/O itself: the daemon wires
// fsnotify, SIGHUP, git polling and its API into Trigger.
type Loop struct {
	opts  LoopOptions
	clock clock.Clock
	log   *slog.Logger
	wake  chan struct{} // capacity 1: a pending trigger

	mu      sync.Mutex
	reasons []string // pending, deduplicated, in arrival order
	last    LastResult
}

// NewLoop returns a loop; Run starts it.
func NewLoop(opts LoopOptions) *Loop {
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	l := &Loop{opts: opts, clock: opts.Clock, log: opts.Logger, wake: make(chan struct{}, 1)}
	if l.clock == nil {
		l.clock = clock.New()
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l
}

// Trigger asks for a reconcile. It never blocks; triggers that arrive before
// the reconcile starts are served by one reconcile, and a trigger that
// arrives during a reconcile causes another one after it.
func (l *Loop) Trigger(reason string) {
	if reason == "" {
		reason = "trigger"
	}
	l.mu.Lock()
	if !slices.Contains(l.reasons, reason) {
		l.reasons = append(l.reasons, reason)
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Last returns the outcome of the last reconcile. It is safe to call from
// any goroutine.
func (l *Loop) Last() LastResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Run reconciles on triggers until ctx is done, and returns ctx's error. A
// reconcile in progress is given ctx, so it sees the cancellation.
func (l *Loop) Run(ctx context.Context) error {
	for {
		var interval <-chan time.Time
		stopInterval := func() bool { return false }
		if l.opts.Interval > 0 {
			t := l.clock.NewTimer(l.opts.Interval)
			interval, stopInterval = t.C(), t.Stop
		}
		select {
		case <-ctx.Done():
			stopInterval()
			return ctx.Err()
		case <-interval:
			l.Trigger("interval")
		case <-l.wake:
			// Put the signal back for debounce to consume.
			l.rewake()
		}
		stopInterval()
		if err := l.debounce(ctx); err != nil {
			return err
		}
		l.runOnce(ctx)
	}
}

func (l *Loop) rewake() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// debounce waits until no trigger came for Debounce, or for at most
// maxWaitDebounces debounces since the first one.
func (l *Loop) debounce(ctx context.Context) error {
	deadline := l.clock.NewTimer(maxWaitDebounces * l.opts.Debounce)
	defer deadline.Stop()
	for {
		select {
		case <-l.wake:
		default:
		}
		quiet := l.clock.NewTimer(l.opts.Debounce)
		stopQuiet := quiet.Stop
		select {
		case <-ctx.Done():
			stopQuiet()
			return ctx.Err()
		case <-l.wake:
			stopQuiet()
			l.rewake() // drained at the top of the loop: restart the quiet period
		case <-quiet.C():
			return nil
		case <-deadline.C():
			stopQuiet()
			return nil
		}
	}
}

func (l *Loop) runOnce(ctx context.Context) {
	// Drain the signal before taking the reasons: a trigger from now on
	// signals again and is served by the next reconcile.
	select {
	case <-l.wake:
	default:
	}
	l.mu.Lock()
	reason := strings.Join(l.reasons, ", ")
	l.reasons = nil
	l.mu.Unlock()
	if reason == "" {
		return // the signal of a trigger whose reason the last reconcile took
	}

	start := l.clock.Now()
	err := l.opts.Reconcile(ctx, reason)
	end := l.clock.Now()
	if err != nil {
		l.log.Error("reconcile failed", "reason", reason, "error", err)
	} else {
		l.log.Info("reconciled", "reason", reason, "duration", end.Sub(start))
	}
	l.mu.Lock()
	l.last = LastResult{At: end, Reason: reason, Duration: end.Sub(start), Err: err, Runs: l.last.Runs + 1}
	l.mu.Unlock()
}
