// Package clocktest has the one fake clock.Clock of the tests. Its two
// timelines move apart: StepWall moves the wall clock alone, as an
// administrator or NTP would, and timers run on the monotonic one.
//
//   - New: a manual clock. Nothing moves until Advance, which fires the
//     timers due; every timer's delay is announced on Requested, so a test
//     sees (and asserts) each delay the code under test asks for. For code
//     that waits on real processes (runner), where testing/synctest cannot
//     be used.
//   - InBubble: the host's clock, for tests inside a testing/synctest
//     bubble (whose time.Sleep moves it), with a wall clock StepWall moves.
//
// It is written here rather than taken from clockwork or k8s.io/utils/clock:
// their fakes have one timeline (setting their time back holds back every
// timer), no monotonic reading, and do not tell the delays asked for, which
// are what the backoff, schedule and clock-step tests assert.
package clocktest

import (
	"sync"
	"time"

	"github.com/plugs-dev/plugs/internal/clock"
)

// Start is the wall time a New clock starts at.
var Start = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Fake is a clock.Clock whose wall clock a test steps.
type Fake struct {
	bubble bool
	start  time.Time // InBubble: when it was made

	mu        sync.Mutex
	wall      time.Time     // New: the wall clock
	offset    time.Duration // InBubble: added to time.Now()
	mono      time.Duration // New: the monotonic clock
	timers    []*timer
	requested chan time.Duration
}

var _ clock.Clock = (*Fake)(nil)

// New returns a manual clock whose wall clock reads wall (Start when zero).
func New(wall time.Time) *Fake {
	if wall.IsZero() {
		wall = Start
	}
	return &Fake{wall: wall, requested: make(chan time.Duration, 100)}
}

// InBubble returns the host's clock with a wall clock StepWall moves, for
// a test inside synctest.Test (made there: Mono counts from then).
func InBubble() *Fake {
	return &Fake{bubble: true, start: time.Now(), requested: make(chan time.Duration, 100)}
}

// Now returns the wall clock (without a monotonic reading: differences of
// two Nows are wall differences, steps included).
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bubble {
		return time.Now().Add(c.offset).Round(0)
	}
	return c.wall
}

// Mono returns the monotonic time since the clock was made.
func (c *Fake) Mono() time.Duration {
	if c.bubble {
		return time.Since(c.start)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mono
}

// Requested receives the delay of every timer made or reset, in order (the
// first 100 not yet received; later ones are dropped).
func (c *Fake) Requested() <-chan time.Duration { return c.requested }

func (c *Fake) announce(d time.Duration) {
	select {
	case c.requested <- d:
	default:
	}
}

// AfterFunc calls f in its own goroutine (InBubble) or in Advance (New)
// once d has passed on the monotonic timeline.
func (c *Fake) AfterFunc(d time.Duration, f func()) clock.Timer {
	defer c.announce(d) // once the timer is there for Advance
	if c.bubble {
		return realTimer{time.AfterFunc(d, f)}
	}
	t := &timer{c: c, f: f}
	c.add(t, d)
	return t
}

// NewTimer returns a timer whose channel receives the wall time once d has
// passed on the monotonic timeline.
func (c *Fake) NewTimer(d time.Duration) clock.Timer {
	defer c.announce(d)
	if c.bubble {
		return realTimer{time.NewTimer(d)}
	}
	t := &timer{c: c, ch: make(chan time.Time, 1)}
	c.add(t, d)
	return t
}

func (c *Fake) add(t *timer, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t.at, t.active = c.mono+d, true
	for _, o := range c.timers {
		if o == t {
			return
		}
	}
	c.timers = append(c.timers, t)
}

// StepWall moves the wall clock alone by d (back when negative): no timer
// fires or waits longer for it.
func (c *Fake) StepWall(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bubble {
		c.offset += d
		return
	}
	c.wall = c.wall.Add(d)
}

// Advance lets d pass on both timelines of a New clock and fires the
// timers then due (those made by what fires wait for the next Advance); it
// returns how many fired. In a bubble it is time.Sleep(d) and returns 0.
func (c *Fake) Advance(d time.Duration) int {
	if c.bubble {
		time.Sleep(d)
		return 0
	}
	c.mu.Lock()
	c.mono += d
	c.wall = c.wall.Add(d)
	now := c.wall
	var due []*timer
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case !t.active:
		case t.at <= c.mono:
			t.active = false
			due = append(due, t)
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
	c.mu.Unlock()
	for _, t := range due {
		if t.f != nil {
			t.f()
		} else {
			select {
			case t.ch <- now:
			default:
			}
		}
	}
	return len(due)
}

// Timers is how many timers wait to fire.
func (c *Fake) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if t.active {
			n++
		}
	}
	return n
}

// timer is a timer of a New clock.
type timer struct {
	c      *Fake
	at     time.Duration // on the monotonic timeline
	f      func()
	ch     chan time.Time
	active bool
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

func (t *timer) Reset(d time.Duration) bool {
	was := t.Stop()
	t.c.add(t, d)
	t.c.announce(d)
	return was
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }
