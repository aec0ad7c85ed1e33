package task

import "time"

// Clock is the scheduler's time source. Now is the wall clock, which cron
// slots and persisted run times are in and which an administrator or NTP may
// step; Mono never jumps, and intervals (every) are measured on it. Tests
// inject a clock whose wall time they step.
type Clock interface {
	Now() time.Time
	Mono() time.Duration
	// NewTimer returns a channel that receives once after d, and a stop function.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

// RealClock is the host's clock.
type RealClock struct{ start time.Time }

// NewRealClock returns the host's clock.
func NewRealClock() *RealClock { return &RealClock{start: time.Now()} }

// Now returns the wall clock, without its monotonic reading.
func (c *RealClock) Now() time.Time { return time.Now().Round(0) }

// Mono returns the monotonic time since the clock was made.
func (c *RealClock) Mono() time.Duration { return time.Since(c.start) }

// NewTimer wraps time.NewTimer.
func (c *RealClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
