package task

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plugs-dev/plugs/internal/clock"
	"github.com/plugs-dev/plugs/internal/layout"
)

// maxSleep bounds how long the scheduler sleeps between looks at the wall
// clock, so that a wall-clock step forward is noticed within it (timers run
// on the monotonic clock and do not see steps).
const maxSleep = time.Minute

// Trigger says why a run started.
type Trigger string

// The triggers of a run.
const (
	TriggerCall     Trigger = "call"     // plugs exec, HTTP, MQTT
	TriggerSchedule Trigger = "schedule" // a schedule came due
	TriggerMissed   Trigger = "missed"   // a persistent schedule's run missed while the daemon was down
)

// fireFunc starts a scheduled run without waiting for it. It reports false
// when the run was skipped (still running and no overlap, or busy).
type fireFunc func(id ID, s Schedule, trigger Trigger) bool

// scheduler fires the schedules of task instances. One goroutine serves all
// of them: it sleeps until the earliest due time (at most maxSleep), fires
// what is due and computes the next times.
type scheduler struct {
	clock    clock.Clock
	local    *time.Location
	stateDir string // "" keeps last-run times in memory only
	fire     fireFunc
	logger   *slog.Logger

	mu      sync.Mutex
	entries map[entryKey]*entry
	last    map[string]map[string]map[string]time.Time // plug → instance → schedule key → last slot or run
	wake    chan struct{}
}

type entryKey struct {
	id  ID
	key string
}

type entry struct {
	id   ID
	plan *plan
	// For cron: slot is the nominal time of the next run, due at slot+offset
	// on the wall clock. For every: dueMono on the monotonic clock.
	slot    time.Time
	dueMono time.Duration
	// now asks a cron entry for a run at the next look, and missed marks
	// the next run of an every entry: a persistent schedule's missed run.
	now, missed bool
}

func newScheduler(clk clock.Clock, local *time.Location, stateDir string, fire fireFunc, logger *slog.Logger) *scheduler {
	return &scheduler{
		clock: clk, local: local, stateDir: stateDir, fire: fire, logger: logger,
		entries: map[entryKey]*entry{},
		last:    map[string]map[string]map[string]time.Time{},
		wake:    make(chan struct{}, 1),
	}
}

// set replaces the schedules of id. Unchanged schedules keep their next
// time; new ones are armed from the persisted last run.
func (s *scheduler) set(id ID, schedules []Schedule) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := map[string]bool{}
	var errs []error
	for _, sc := range schedules {
		k := entryKey{id, sc.Key()}
		keep[k.key] = true
		if e, ok := s.entries[k]; ok && samePlanSettings(e.plan.Schedule, sc) {
			continue
		}
		p, err := newPlan(sc, id.String(), s.local)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.entries[k] = s.arm(id, p)
	}
	for k := range s.entries {
		if k.id == id && !keep[k.key] {
			delete(s.entries, k)
		}
	}
	s.poke()
	return errors.Join(errs...)
}

func samePlanSettings(a, b Schedule) bool {
	if (a.Jitter == nil) != (b.Jitter == nil) || (a.Jitter != nil && *a.Jitter != *b.Jitter) {
		return false
	}
	a.Jitter, b.Jitter = nil, nil
	return a == b
}

// remove forgets every schedule of the instances of plug not in keep.
func (s *scheduler) removePlugExcept(plug string, keep map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.entries {
		if k.id.Plug == plug && !keep[k.id.Instance] {
			delete(s.entries, k)
		}
	}
}

// arm computes the first due time of a schedule from its last run.
func (s *scheduler) arm(id ID, p *plan) *entry {
	now, mono := s.clock.Now().Round(0), s.clock.Mono() // cron and persisted times are wall times
	last := s.lastRun(id, p.Key())
	e := &entry{id: id, plan: p}
	if p.cron != nil {
		from := now.Add(-p.offset)
		if last.After(from) { // the wall clock was stepped back while we were down
			from = last
		}
		e.slot = p.nextSlot(from) // zero: never (see step)
		if next := p.nextSlot(last); p.Persistent && !last.IsZero() && !next.IsZero() && !next.After(now.Add(-p.offset)) {
			e.now = true
		}
		return e
	}
	switch {
	case last.IsZero() && p.Persistent:
		e.dueMono, e.missed = mono+p.offset, true
	case last.IsZero():
		e.dueMono = mono + p.Every + p.offset
	default:
		next := last.Add(p.Every)
		if !next.After(now) {
			if p.Persistent {
				e.dueMono, e.missed = mono+p.offset, true
				break
			}
			// Keep the phase: the next multiple of Every after now.
			n := now.Sub(last)/p.Every + 1
			next = last.Add(n * p.Every)
		}
		e.dueMono = mono + min(next.Sub(now), p.Every)
	}
	return e
}

func (s *scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run fires schedules until ctx ends.
func (s *scheduler) run(ctx context.Context) {
	for {
		wait := s.step()
		t := s.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.wake:
			t.Stop()
		case <-t.C():
		}
	}
}

type firing struct {
	e       *entry
	trigger Trigger
}

// step fires what is due and returns how long to sleep.
func (s *scheduler) step() time.Duration {
	s.mu.Lock()
	now, mono := s.clock.Now().Round(0), s.clock.Mono() // cron and persisted times are wall times
	wait := maxSleep
	var due []firing
	for _, e := range s.entries {
		trigger := TriggerSchedule
		if e.missed {
			trigger = TriggerMissed
		}
		switch {
		case e.now: // cron, persistent, missed while down: once, now
			e.now, e.missed = false, false
			s.setLastRun(e.id, e.plan.Key(), now.Add(-e.plan.offset))
			due = append(due, firing{e, TriggerMissed})
		case e.plan.cron != nil && e.slot.IsZero():
			// A cron expression with no next time (February 30th:
			// robfig/cron's Next gives the zero time) never comes due.
			// Taken as due, it fired back to back with no wait.
		case e.plan.cron != nil:
			if at := e.slot.Add(e.plan.offset); !now.Before(at) {
				// Coalesce: after a step forward over several slots, one run;
				// after a step back, never a slot at or before the one just run.
				slot := e.slot
				e.slot = e.plan.nextSlot(maxTime(now.Add(-e.plan.offset), slot))
				s.setLastRun(e.id, e.plan.Key(), slot)
				due = append(due, firing{e, trigger})
			}
		default:
			if mono >= e.dueMono {
				e.dueMono = mono + e.plan.Every
				e.missed = false
				s.setLastRun(e.id, e.plan.Key(), now)
				due = append(due, firing{e, trigger})
			}
		}
		if e.plan.cron != nil {
			if !e.slot.IsZero() {
				wait = min(wait, max(e.slot.Add(e.plan.offset).Sub(now), 0))
			}
		} else {
			wait = min(wait, max(e.dueMono-mono, 0))
		}
	}
	s.saveLocked(due)
	s.mu.Unlock()
	// A stable order: by instance, then schedule.
	slices.SortFunc(due, func(a, b firing) int {
		if c := compareID(a.e.id, b.e.id); c != 0 {
			return c
		}
		return strings.Compare(a.e.plan.Key(), b.e.plan.Key())
	})
	for _, f := range due {
		s.fire(f.e.id, f.e.plan.Schedule, f.trigger)
	}
	return wait
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Last-run persistence: <stateDir>/tasks/<plug>/schedule.json holds, per
// instance and schedule key, the last slot (cron) or run time (every).

func (s *scheduler) scheduleFile(plug string) string {
	return layout.TaskSchedule(s.stateDir, plug)
}

func (s *scheduler) lastRun(id ID, key string) time.Time {
	byInst, ok := s.last[id.Plug]
	if !ok {
		byInst = map[string]map[string]time.Time{}
		if s.stateDir != "" {
			b, err := os.ReadFile(s.scheduleFile(id.Plug))
			if err == nil {
				if err := json.Unmarshal(b, &byInst); err != nil {
					s.logger.Warn("task schedule state unreadable, starting afresh", "plug", id.Plug, "err", err)
					byInst = map[string]map[string]time.Time{}
				}
			} else if !errors.Is(err, fs.ErrNotExist) {
				s.logger.Warn("read task schedule state", "plug", id.Plug, "err", err)
			}
		}
		s.last[id.Plug] = byInst
	}
	return byInst[id.Instance][key]
}

func (s *scheduler) setLastRun(id ID, key string, t time.Time) {
	s.lastRun(id, key) // loads the plug's file first
	m := s.last[id.Plug]
	if m[id.Instance] == nil {
		m[id.Instance] = map[string]time.Time{}
	}
	m[id.Instance][key] = t.Round(0)
}

func (s *scheduler) saveLocked(due []firing) {
	if s.stateDir == "" {
		return
	}
	plugs := map[string]bool{}
	for _, f := range due {
		plugs[f.e.id.Plug] = true
	}
	for plug := range plugs {
		b, err := json.MarshalIndent(s.last[plug], "", "  ")
		if err == nil {
			err = writeFileAtomic(s.scheduleFile(plug), b, 0o600, true)
		}
		if err != nil {
			s.logger.Warn("save task schedule state", "plug", plug, "err", err)
		}
	}
}
