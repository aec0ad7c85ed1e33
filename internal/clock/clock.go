package clock

import "time"

// Clock is a time source: the host's (Real) or a test's (clocktest.Fake).
type Clock interface {
	// Now is the wall clock.
	Now() time.Time
	// Mono is the monotonic time since the clock was made.
	Mono() time.Duration
	// AfterFunc calls f in its own goroutine once d has passed on the
	// monotonic timeline; the Timer's C is nil.
	AfterFunc(d time.Duration, f func()) Timer
	// NewTimer returns a Timer whose C receives once d has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a timer made by a Clock, as *time.Timer.
type Timer interface {
	// C is the channel a NewTimer timer sends on (nil for AfterFunc).
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
	// Reset makes the timer fire after d (again); it reports whether the
	// timer was active.
	Reset(d time.Duration) bool
}

// Real is the host's clock. Make it with New: Mono counts from then.
type Real struct{ start time.Time }

// New returns the host's clock.
func New() *Real { return &Real{start: time.Now()} }

// Now returns time.Now().
func (c *Real) Now() time.Time { return time.Now() }

// Mono returns the monotonic time since New.
func (c *Real) Mono() time.Duration { return time.Since(c.start) }

// AfterFunc wraps time.AfterFunc.
func (c *Real) AfterFunc(d time.Duration, f func()) Timer { return realTimer{time.AfterFunc(d, f)} }

// NewTimer wraps time.NewTimer.
func (c *Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }
