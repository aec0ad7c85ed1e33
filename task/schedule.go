package task

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/robfig/cron/v3"
)

// ParseCron parses a cron expression the way plugs reads schedule { cron }:
// five fields (minute hour day-of-month month day-of-week) or a descriptor
// such as @hourly, @daily or @every 5m.
func ParseCron(expr string) (cron.Schedule, error) {
	s, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, fmt.Errorf("cron expression %q: %w", expr, err)
	}
	return s, nil
}

// plan is a Schedule ready to compute due times.
type plan struct {
	Schedule
	cron   cron.Schedule // nil for Every
	loc    *time.Location
	offset time.Duration // the fixed jitter of this instance
}

func newPlan(s Schedule, seed string, local *time.Location) (*plan, error) {
	p := &plan{Schedule: s, loc: local}
	if s.UTC {
		p.loc = time.UTC
	}
	if s.Cron != "" {
		c, err := ParseCron(s.Cron)
		if err != nil {
			return nil, err
		}
		p.cron = c
	} else if s.Every <= 0 {
		return nil, fmt.Errorf("schedule needs cron or a positive every")
	}
	jitter := p.defaultJitter()
	if s.Jitter != nil {
		jitter = *s.Jitter
	}
	if jitter > 0 {
		h := fnv.New64a()
		h.Write([]byte(seed + "\x00" + s.Key()))
		p.offset = time.Duration(h.Sum64() % uint64(jitter))
	}
	return p, nil
}

// defaultJitter is a tenth of the schedule's period, at most instance.MaxDefaultJitter.
func (p *plan) defaultJitter() time.Duration {
	period := p.Every
	if p.cron != nil {
		// The period around a fixed date; good enough for a spread.
		t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, p.loc)
		a := p.cron.Next(t0)
		period = p.cron.Next(a).Sub(a)
		if a.IsZero() {
			period = 0 // a schedule that never runs (see scheduler.step)
		}
	}
	return min(period/10, instance.MaxDefaultJitter)
}

// nextSlot is the first cron slot strictly after t, in the schedule's zone;
// the zero time when there is none (an expression no date matches).
func (p *plan) nextSlot(t time.Time) time.Time {
	return p.cron.Next(t.In(p.loc))
}
