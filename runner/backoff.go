package runner

import (
	"fmt"
	"time"

	"github.com/plugs-dev/plugs/instance"
)

// jitter is the relative spread applied to every delay: +/-10%.
const jitter = 0.10

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
	if now.Sub(startedAt) >= b.Policy.ResetAfter {
		b.Attempt = 0
	}
	b.Attempt++
	how := describeExit(exit)
	if b.Policy.MaxRestarts > 0 && b.Attempt > b.Policy.MaxRestarts {
		return -1, fmt.Sprintf("%s; gave up after %d restarts", how, b.Policy.MaxRestarts)
	}
	if b.Attempt == 1 {
		return 0, fmt.Sprintf("%s; restart 1 now", how)
	}
	d := b.Policy.InitialDelay
	for i := 2; i < b.Attempt && d < b.Policy.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, b.Policy.MaxDelay)
	if rnd != nil {
		d += time.Duration(float64(d) * jitter * (2*rnd() - 1))
	}
	return d, fmt.Sprintf("%s; restart %d in %s", how, b.Attempt, d)
}

func describeExit(e instance.Exit) string {
	if e.Signal != "" {
		return "killed by " + e.Signal
	}
	return fmt.Sprintf("exited with code %d", e.Code)
}
