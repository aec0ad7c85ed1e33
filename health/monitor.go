package health

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/plugs-dev/plugs/internal/clock"
	"github.com/plugs-dev/plugs/internal/redact"
)

// FastInterval bounds the time between probes of an active check that has
// not passed yet since its instance started, so that readiness is seen
// within a second even with a long interval.
const FastInterval = time.Second

// monitor is the health state machine of one instance. Its timers and
// probes carry the generation they were armed in; a start, a stop or a new
// configuration bumps the generation, which voids them.
type monitor struct {
	m  *Manager
	id ID

	mu        sync.Mutex
	cfg       Config
	gen       uint64
	running   bool
	pid       int
	startedAt time.Time
	checks    []*checkState
	ready     bool
	readyAt   time.Time
	since     time.Time // healthy since
	lastFail  string
	restarts  int
	asked     bool // check_restart asked for a restart in this generation
	closed    bool

	// What notify programs sent, kept across generations: a program may
	// send READY=1 before its start is observed. pgid 0 means unknown.
	notifyReady      time.Time
	notifyReadyPgid  int
	notifyStatus     string
	lastData         time.Time
	sent             string // the summary last announced through OnChange
	notifySocketPath string
}

type checkState struct {
	c          Check
	timer      clock.Timer
	passing    bool
	everPassed bool
	failures   int // consecutive
	counted    int // consecutive failures after the check_restart grace
	lastResult time.Time
	lastDur    time.Duration
	output     string
	passes     uint64
	fails      uint64
}

func newMonitor(m *Manager, id ID, cfg Config) *monitor {
	mo := &monitor{m: m, id: id}
	mo.setConfigLocked(cfg)
	return mo
}

// setConfigLocked replaces the checks; result counters of checks that keep
// their name survive.
func (mo *monitor) setConfigLocked(cfg Config) {
	old := mo.checks
	mo.cfg = cfg
	mo.checks = make([]*checkState, len(cfg.Checks))
	for i, c := range cfg.Checks {
		cs := &checkState{c: c}
		if j := slices.IndexFunc(old, func(o *checkState) bool { return o.c.Name == c.Name }); j >= 0 {
			cs.passes, cs.fails = old[j].passes, old[j].fails
		}
		mo.checks[i] = cs
	}
	for _, cs := range old {
		if cs.timer != nil {
			cs.timer.Stop()
		}
	}
}

// configure applies a new configuration; a running instance's checks start
// over (it stays ready: readiness is once per process).
func (mo *monitor) configure(cfg Config) {
	mo.mu.Lock()
	mo.gen++
	mo.setConfigLocked(cfg)
	if mo.running {
		mo.armAllLocked()
	}
	mo.mu.Unlock()
	mo.announce()
}

// observe tells the monitor whether a process runs, and which.
func (mo *monitor) observe(running bool, pid int, startedAt time.Time) {
	mo.mu.Lock()
	switch {
	case mo.closed:
	case running && (!mo.running || pid != mo.pid || !startedAt.Equal(mo.startedAt)):
		mo.startLocked(pid, startedAt)
	case !running && mo.running:
		mo.gen++
		mo.running, mo.pid, mo.ready, mo.since = false, 0, false, time.Time{}
		for _, cs := range mo.checks {
			if cs.timer != nil {
				cs.timer.Stop()
			}
			cs.passing = false
		}
	}
	mo.mu.Unlock()
	mo.announce()
}

func (mo *monitor) startLocked(pid int, startedAt time.Time) {
	mo.gen++
	mo.running, mo.pid, mo.startedAt = true, pid, startedAt
	mo.ready, mo.readyAt, mo.since, mo.asked = false, time.Time{}, time.Time{}, false
	for _, cs := range mo.checks {
		if cs.timer != nil {
			cs.timer.Stop()
		}
		*cs = checkState{c: cs.c, passes: cs.passes, fails: cs.fails}
	}
	mo.armAllLocked()
	mo.evaluateLocked()
}

// armAllLocked arms every check of a running instance for its first result.
func (mo *monitor) armAllLocked() {
	now := mo.m.clock.Now()
	for _, cs := range mo.checks {
		switch cs.c.Type {
		case TypeExec, TypeHTTP, TypeTCP:
			mo.armProbeLocked(cs, 0)
		case TypeData:
			mo.armSilenceLocked(cs, cs.c.Within)
		case TypeNotify:
			if mo.notifyBelongsLocked(mo.notifyReadyPgid, mo.notifyReady) {
				mo.resultLocked(cs, true, "READY=1", 0, now)
				mo.armSilenceLocked(cs, cs.c.Watchdog)
			} else {
				mo.armSilenceLocked(cs, cs.c.Timeout)
			}
		}
	}
}

// notifyBelongsLocked says whether a notify message from process group
// pgid, received at at, was sent by the current process: by its group when
// the sender was known, else by its time.
func (mo *monitor) notifyBelongsLocked(pgid int, at time.Time) bool {
	if at.IsZero() || !mo.running {
		return false
	}
	if pgid != 0 {
		return pgid == mo.pid
	}
	return !at.Before(mo.startedAt)
}

// armProbeLocked runs the probe of cs after d, in the timer's goroutine.
func (mo *monitor) armProbeLocked(cs *checkState, d time.Duration) {
	gen := mo.gen
	cs.timer = mo.m.clock.AfterFunc(d, func() { mo.probe(gen, cs) })
}

func (mo *monitor) probe(gen uint64, cs *checkState) {
	mo.mu.Lock()
	if gen != mo.gen {
		mo.mu.Unlock()
		return
	}
	c, dir, env := cs.c, mo.cfg.Dir, mo.cfg.Env
	mo.mu.Unlock()

	start := mo.m.clock.Now()
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	res := mo.m.prober.Probe(ctx, mo.id, c, dir, env)
	cancel()
	now := mo.m.clock.Now()
	mo.m.observeDuration(c.Type, now.Sub(start))

	mo.mu.Lock()
	if gen != mo.gen {
		mo.mu.Unlock()
		return
	}
	mo.resultLocked(cs, res.OK, res.Output, now.Sub(start), now)
	next := c.Interval
	if !cs.everPassed {
		next = min(next, FastInterval)
	}
	mo.armProbeLocked(cs, next)
	mo.mu.Unlock()
	mo.announce()
}

// armSilenceLocked arms the timer of a passive check (data, notify): when
// nothing comes within d, it fails, and is armed again for another d.
// d <= 0 arms nothing.
func (mo *monitor) armSilenceLocked(cs *checkState, d time.Duration) {
	if cs.timer != nil {
		cs.timer.Stop()
		cs.timer = nil
	}
	if d <= 0 {
		return
	}
	gen := mo.gen
	cs.timer = mo.m.clock.AfterFunc(d, func() {
		mo.mu.Lock()
		if gen != mo.gen {
			mo.mu.Unlock()
			return
		}
		var out string
		switch {
		case cs.c.Type == TypeData:
			out = fmt.Sprintf("no data for %s", cs.c.Within)
			if !mo.lastData.IsZero() {
				out += fmt.Sprintf(" (last %s ago)", mo.m.clock.Now().Sub(mo.lastData).Round(time.Second))
			}
		case cs.everPassed:
			out = fmt.Sprintf("no WATCHDOG=1 for %s", d)
		default:
			out = fmt.Sprintf("no READY=1 within %s", d)
		}
		mo.resultLocked(cs, false, out, 0, mo.m.clock.Now())
		mo.armSilenceLocked(cs, d)
		mo.mu.Unlock()
		mo.announce()
	})
}

// notify handles one datagram's fields from process group pgid (0: unknown).
func (mo *monitor) notify(pgid int, fields map[string]string) {
	now := mo.m.clock.Now()
	mo.mu.Lock()
	if v, ok := fields["STATUS"]; ok && (pgid == 0 || !mo.running || pgid == mo.pid) {
		mo.notifyStatus = shorten(v)
	}
	if fields["READY"] == "1" {
		mo.notifyReady, mo.notifyReadyPgid = now, pgid
	}
	if mo.notifyBelongsLocked(pgid, now) {
		for _, cs := range mo.checks {
			if cs.c.Type != TypeNotify {
				continue
			}
			switch {
			case fields["WATCHDOG"] == "trigger":
				mo.resultLocked(cs, false, "WATCHDOG=trigger", 0, now)
			case fields["READY"] == "1" && !cs.everPassed:
				mo.resultLocked(cs, true, "READY=1", 0, now)
				mo.armSilenceLocked(cs, cs.c.Watchdog)
			case fields["WATCHDOG"] == "1" && cs.everPassed:
				mo.resultLocked(cs, true, "WATCHDOG=1", 0, now)
				mo.armSilenceLocked(cs, cs.c.Watchdog)
			}
		}
	}
	mo.mu.Unlock()
	mo.announce()
}

// data records a message on the instance's data topic.
func (mo *monitor) data(at time.Time) {
	mo.mu.Lock()
	mo.lastData = at
	changed := false
	if mo.running {
		for _, cs := range mo.checks {
			if cs.c.Type == TypeData {
				// A pass is recorded when the state changes; otherwise only
				// the timer moves, so a busy topic costs a timer reset.
				if !cs.passing || cs.failures > 0 {
					mo.resultLocked(cs, true, "data received", 0, at)
					changed = true
				} else {
					cs.lastResult = at
					cs.passes++
				}
				mo.armSilenceLocked(cs, cs.c.Within)
			}
		}
	}
	mo.mu.Unlock()
	if changed {
		mo.announce()
	}
}

// resultLocked records one result of cs and re-derives the instance's health.
func (mo *monitor) resultLocked(cs *checkState, ok bool, output string, dur time.Duration, now time.Time) {
	output = redact.Text(redact.Values(output, mo.cfg.Secrets...))
	cs.lastResult, cs.lastDur, cs.output = now, dur, shorten(output)
	if ok {
		cs.passes++
		cs.passing, cs.everPassed, cs.failures, cs.counted = true, true, 0, 0
	} else {
		cs.fails++
		cs.failures++
		if cs.failures >= cs.c.Failures {
			cs.passing = false
		}
		if now.Sub(mo.startedAt) >= mo.cfg.RestartGrace {
			cs.counted++
		}
		mo.lastFail = shorten(cs.c.Name + ": " + output)
	}
	mo.evaluateLocked()
	if !ok && mo.cfg.RestartLimit > 0 && cs.counted >= mo.cfg.RestartLimit && !mo.asked && mo.m.restart != nil {
		mo.asked = true
		mo.restarts++
		reason := fmt.Sprintf("check %s failed %d times in a row: %s", cs.c.Name, cs.counted, cs.output)
		id := mo.id
		go mo.m.restart(id, reason)
	}
}

// evaluateLocked derives readiness and liveness from the checks.
func (mo *monitor) evaluateLocked() {
	if !mo.running {
		return
	}
	all := true
	for _, cs := range mo.checks {
		all = all && cs.passing
	}
	now := mo.m.clock.Now()
	if all && !mo.ready {
		mo.ready, mo.readyAt = true, now
	}
	switch {
	case all && mo.since.IsZero():
		mo.since = now
	case !all:
		mo.since = time.Time{}
	}
}

func (mo *monitor) status() Status {
	mo.mu.Lock()
	defer mo.mu.Unlock()
	return mo.statusLocked()
}

func (mo *monitor) statusLocked() Status {
	s := Status{
		Running: mo.running, Ready: mo.ready, ReadyAt: mo.readyAt, HealthySince: mo.since,
		LastFailure: mo.lastFail, NotifyStatus: mo.notifyStatus, Restarts: mo.restarts,
	}
	switch {
	case !mo.running || len(mo.checks) == 0:
		s.Health = None
	case !mo.since.IsZero():
		s.Health = Healthy
	case !mo.ready:
		s.Health = Pending
	default:
		s.Health = Unhealthy
	}
	for _, cs := range mo.checks {
		s.Checks = append(s.Checks, CheckStatus{
			Name: cs.c.Name, Type: cs.c.Type, Passing: cs.passing, ConsecutiveFailures: cs.failures,
			LastResult: cs.lastResult, LastDuration: cs.lastDur, Output: cs.output, Passes: cs.passes, Fails: cs.fails,
		})
	}
	return s
}

// announce calls OnChange when what status shows changed since the last call.
func (mo *monitor) announce() {
	if mo.m.onChange == nil {
		return
	}
	mo.mu.Lock()
	s := mo.statusLocked()
	sum := fmt.Sprintf("%s|%t|%t|%s|%s", s.Health, s.Running, s.Ready, s.LastFailure, s.NotifyStatus)
	changed := sum != mo.sent
	mo.sent = sum
	mo.mu.Unlock()
	if changed {
		mo.m.onChange(mo.id)
	}
}

// close stops the monitor's timers for good.
func (mo *monitor) close() {
	mo.mu.Lock()
	defer mo.mu.Unlock()
	mo.closed = true
	mo.gen++
	for _, cs := range mo.checks {
		if cs.timer != nil {
			cs.timer.Stop()
		}
	}
}
