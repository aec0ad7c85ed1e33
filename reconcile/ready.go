package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plugs-dev/plugs/instance"
)

// dependencies waits, for Apply, until the plugs that a level of starts
// depends on are ready. Each dependency plug is waited for once per apply
// (every level that depends on it shares the answer, and a dependency
// that is not ready is logged once).
type dependencies struct {
	ready    instance.ReadyWaiter // nil: nothing is waited for
	timeout  time.Duration        // for a plug without update {}
	log      *slog.Logger
	outcome  func(instance.ID) (Outcome, bool) // what this apply did to an instance so far
	members  map[string][]Change               // plug → its changes that keep it (no Delete)
	mu       sync.Mutex
	answered map[string]string // plug → "" (ready) or why not
}

func newDependencies(p *Plan, ready instance.ReadyWaiter, timeout time.Duration, log *slog.Logger, outcome func(instance.ID) (Outcome, bool)) *dependencies {
	d := &dependencies{ready: ready, timeout: timeout, log: log, outcome: outcome,
		members: map[string][]Change{}, answered: map[string]string{}}
	for _, c := range p.Changes {
		if c.Action != Delete && c.After != nil {
			d.members[c.ID.Plug] = append(d.members[c.ID.Plug], c)
		}
	}
	return d
}

// await waits until every dependency of the changes of lvl is ready, or
// its deadline passed, each dependency plug in parallel, and returns what
// to say of a change of lvl: "" when all its dependencies were ready, else
// why not. It returns early when ctx ends (Apply then fails the level).
func (d *dependencies) await(ctx context.Context, lvl []Change) func(Change) string {
	if d.ready == nil {
		return func(Change) string { return "" }
	}
	inLevel := map[string]bool{} // a dependency in the same level is a cycle (spec refuses them): not waited for
	for _, c := range lvl {
		inLevel[c.ID.Plug] = true
	}
	var plugs []string
	for _, c := range lvl {
		for _, dep := range c.After.DependsOn {
			if !inLevel[dep] && !slices.Contains(plugs, dep) {
				plugs = append(plugs, dep)
			}
		}
	}
	var wg sync.WaitGroup
	for _, dep := range plugs {
		d.mu.Lock()
		_, done := d.answered[dep]
		d.mu.Unlock()
		if done {
			continue
		}
		wg.Go(func() {
			why := d.awaitPlug(ctx, dep)
			if ctx.Err() != nil {
				return // not an answer: Apply is cut short
			}
			d.mu.Lock()
			d.answered[dep] = why
			d.mu.Unlock()
		})
	}
	wg.Wait()
	return func(c Change) string {
		d.mu.Lock()
		defer d.mu.Unlock()
		var whys []string
		for _, dep := range c.After.DependsOn {
			if why := d.answered[dep]; why != "" && !slices.Contains(whys, why) {
				whys = append(whys, why)
			}
		}
		return strings.Join(whys, "; ")
	}
}

// awaitPlug waits until every instance of plug is ready, for at most its
// deadline, and returns "" or why not, logged.
func (d *dependencies) awaitPlug(ctx context.Context, plug string) string {
	members := d.members[plug]
	if len(members) == 0 {
		return "" // not in the plan (a task, a disabled plug): nothing to wait for
	}
	timeout := readyDeadline(members[0].After, d.timeout)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t0 := time.Now()
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, c := range members {
		if o, ok := d.outcome(c.ID); ok && o.Err != nil && !o.RolledBack {
			errs[i] = fmt.Errorf("%s did not start", c.ID)
			continue
		}
		wg.Go(func() {
			if err := d.ready.AwaitReady(wctx, c.ID); err != nil {
				errs[i] = fmt.Errorf("%s: %w", c.ID, err)
			}
		})
	}
	wg.Wait()
	err := errors.Join(errs...)
	if err == nil || ctx.Err() != nil {
		return ""
	}
	why := fmt.Sprintf("dependency %s not ready: %s", plug, oneLine(err))
	if wctx.Err() != nil {
		why = fmt.Sprintf("dependency %s not ready after %s", plug, timeout)
	}
	d.log.Warn("dependency not ready, starting its dependents anyway", "dependency", plug,
		"waited", time.Since(t0).Round(time.Millisecond), "deadline", timeout, "error", oneLine(err))
	return why
}

// oneLine joins the lines of err's message with "; ".
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// ReadyDeadline is how long to wait for an instance of spec to be ready:
// its plug's update {} block's healthy_deadline, else DefaultReadyTimeout.
// Apply waits that long for a dependency; the daemon as long before
// post_start.
func ReadyDeadline(spec instance.Spec) time.Duration {
	return readyDeadline(&spec, DefaultReadyTimeout)
}

func readyDeadline(spec *instance.Spec, def time.Duration) time.Duration {
	if u := spec.Update; u != nil && u.HealthyDeadline > 0 {
		return u.HealthyDeadline
	}
	return def
}
