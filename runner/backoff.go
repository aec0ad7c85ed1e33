package runner

import (
	"fmt"
	"time"

	"github.com/plugs-dev/plugs/instance"
)

const (
	// jitter is the relative spread applied to every delay: +/-10%.
	jitter = 0.10
	// quickExit is how short a run that exits 0 must be to count towards
	// the "looks like a task" hint.
	quickExit = 10 * time.Second
	// quickExitsHint is how many such runs in a row earn the hint.
	quickExitsHint = 2
)

// TaskHint is appended to the reason of a service instance that keeps
// exiting 0 within seconds: it looks like a program meant to run once.
const TaskHint = "it keeps exiting 0 within seconds: if it is meant to run once, declare it as a task"

// Backoff decides when a crashed instance is started again. The first
// crash after a stable run (and the very first crash) restarts at once, as
// supervisord, runit, pm2 and systemd do; each further consecutive crash
// waits InitialDelay, doubling up to MaxDelay, with +/-10% jitter. So an
// instance that fails instantly forever is restarted after 0, 1s, 2s, 4s
// ... 1m (the defaults, which the render fills in every Spec): contained,
// never a busy loop. A run that lasted
// ResetAfter or longer forgets earlier crashes. MaxRestarts 0 never gives
// up.
//
// It is a decision object: time and randomness are arguments, so the
// schedule is exact in tests. It is not safe for concurrent use; each
// instance owns one.
type Backoff struct {
	Policy instance.RestartPolicy
	// Attempt counts the crashes since the last stable run; the restart
	// after the first is immediate.
	Attempt int
	// QuickCleanExits counts the consecutive runs that exited 0 within
	// quickExit; from quickExitsHint on, the reason carries TaskHint.
	QuickCleanExits int
}

// NewBackoff returns a Backoff for p, taken as it is: the render filled
// its defaults. A MaxDelay below InitialDelay is raised to it.
func NewBackoff(p instance.RestartPolicy) *Backoff {
	if p.MaxDelay < p.InitialDelay {
		p.MaxDelay = p.InitialDelay
	}
	return &Backoff{Policy: p}
}

// Next records that the process started at startedAt ended with exit at
// now, and returns how long to wait before starting it again and why: 0
// for the first crash in a row, then InitialDelay doubling. A negative
// delay means give up. rnd returns a float in [0, 1); nil means no jitter.
func (b *Backoff) Next(now, startedAt time.Time, exit instance.Exit, rnd func() float64) (time.Duration, string) {
	return b.next(now, startedAt, describeExit(exit), exit.Code == 0 && exit.Signal == "", rnd)
}

// NextFailedStart is Next for a start that failed before or just after the
// process ran (a failing pre_start or post_start hook): how says what
// failed, e.g. "pre_start exited 3".
func (b *Backoff) NextFailedStart(now, startedAt time.Time, how string, rnd func() float64) (time.Duration, string) {
	return b.next(now, startedAt, how, false, rnd)
}

func (b *Backoff) next(now, startedAt time.Time, how string, clean bool, rnd func() float64) (time.Duration, string) {
	if now.Sub(startedAt) >= b.Policy.ResetAfter {
		b.Attempt = 0
	}
	b.Attempt++
	if clean && now.Sub(startedAt) < quickExit {
		b.QuickCleanExits++
	} else {
		b.QuickCleanExits = 0
	}
	hint := ""
	if b.QuickCleanExits >= quickExitsHint {
		hint = " (" + TaskHint + ")"
	}
	if b.Policy.MaxRestarts > 0 && b.Attempt > b.Policy.MaxRestarts {
		return -1, fmt.Sprintf("%s; gave up after %d restarts%s", how, b.Policy.MaxRestarts, hint)
	}
	if b.Attempt == 1 {
		return 0, fmt.Sprintf("%s; restart 1 now%s", how, hint)
	}
	d := b.Policy.InitialDelay
	for i := 2; i < b.Attempt && d < b.Policy.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, b.Policy.MaxDelay)
	if rnd != nil {
		// The jitter never takes a delay past MaxDelay: at the cap it
		// only shortens.
		d = min(d+time.Duration(float64(d)*jitter*(2*rnd()-1)), b.Policy.MaxDelay)
	}
	return d, fmt.Sprintf("%s; restart %d in %s%s", how, b.Attempt, d, hint)
}

func describeExit(e instance.Exit) string {
	if e.Signal != "" {
		return "killed by " + e.Signal
	}
	return fmt.Sprintf("exited with code %d", e.Code)
}
