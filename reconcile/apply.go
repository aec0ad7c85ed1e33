package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"golang.org/x/sync/errgroup"
)

// DefaultParallelism is how many instances Apply starts or stops at once
// when ApplyOptions.Parallelism is unset.
const DefaultParallelism = 8

// DefaultReadyTimeout is how long Apply waits for a dependency to be ready
// when its plug has no update {} block (whose healthy_deadline it takes
// then) and ApplyOptions.ReadyTimeout is unset.
const DefaultReadyTimeout = time.Minute

// ApplyOptions tune Apply.
type ApplyOptions struct {
	Parallelism int          // instances acted on at once per level; default DefaultParallelism
	Logger      *slog.Logger // nil: discard
	// Ready tells when a dependency is ready (see Apply); nil: the
	// executor, when it implements instance.ReadyWaiter, else nothing is
	// waited for.
	Ready instance.ReadyWaiter
	// ReadyTimeout bounds the wait for a dependency whose plug has no
	// update {} block; default DefaultReadyTimeout.
	ReadyTimeout time.Duration
}

// Outcome is what became of one change of a plan.
type Outcome struct {
	ID     instance.ID
	Action Action
	// Err is why the change failed; nil when it was applied.
	Err error
	// RolledBack is set when a Replace could not start the new spec and the
	// old spec was started again (Err says why the new one failed; a failed
	// rollback is joined into Err).
	RolledBack bool
	// Skipped is set for an Update the executor cannot apply in place.
	Skipped bool
	// NotReady is set on a Create or Replace whose dependency was not
	// ready when it was started: "dependency bridge not ready after 1m0s"
	// ("; " between several). It is not an error.
	NotReady string
}

// ApplyResult lists the outcome of every change Apply acted on, in plan order.
type ApplyResult struct {
	Outcomes []Outcome
}

// Err joins the errors of every failed change, or returns nil.
func (r *ApplyResult) Err() error {
	var errs []error
	for _, o := range r.Outcomes {
		if o.Err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", o.Action, o.ID, o.Err))
		}
	}
	return errors.Join(errs...)
}

// Apply carries out p through ex, reading nothing but the plan:
//
//  1. Deletes, in reverse depends_on order (dependents stop before what they
//     depend on).
//  2. In-place updates, when ex implements instance.Updater.
//  3. Creates and replaces, in depends_on order: level by level, each level
//     with at most Parallelism instances in flight. Before a level starts,
//     every instance of the plugs its changes depend on (those the plan
//     keeps: started, replaced, updated or left running) must be ready
//     (opts.Ready), each dependency plug bounded by its update {} block's
//     healthy_deadline, else ReadyTimeout. A replace stops the old
//     process, then starts the new spec; if that fails it starts the old
//     spec again (rollback) and reports both.
//
// depends_on is systemd's After= without Requires=: a dependency's start
// ends when it is ready (READY=1 for a notify service, the fork for a
// simple one), and one that failed to start, cannot become ready, or is not
// ready by its deadline does not keep its dependents from starting: they
// are started anyway, the reason is logged once per dependency and set on
// their Outcome (NotReady), and the runner's restart backoff copes with a
// dependent that cannot work yet. A failed instance never stops the
// others: every change is attempted. Apply stops early only when ctx is
// done.
func Apply(ctx context.Context, ex instance.Executor, p *Plan, opts ApplyOptions) *ApplyResult {
	if opts.Parallelism <= 0 {
		opts.Parallelism = DefaultParallelism
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Ready == nil {
		opts.Ready, _ = ex.(instance.ReadyWaiter)
	}
	a := &applier{ex: ex, logger: logger, parallelism: opts.Parallelism}

	index := make(map[instance.ID]int) // change ID → position in outcomes (plan order)
	var deletes, updates, starts []Change
	for _, c := range p.Changes {
		switch c.Action {
		case Delete:
			deletes = append(deletes, c)
		case Update:
			updates = append(updates, c)
		case Create, Replace:
			starts = append(starts, c)
		default:
			continue
		}
		index[c.ID] = len(index)
	}
	res := &ApplyResult{Outcomes: make([]Outcome, len(index))}
	record := func(o Outcome) { res.Outcomes[index[o.ID]] = o }

	stopLevels := byLevel(deletes)
	slices.Reverse(stopLevels)
	for _, lvl := range stopLevels {
		a.each(ctx, lvl, record, a.delete)
	}
	a.each(ctx, updates, record, a.update)
	deps := newDependencies(p, opts.Ready, opts.ReadyTimeout, logger, func(id instance.ID) (Outcome, bool) {
		i, ok := index[id]
		if !ok {
			return Outcome{}, false
		}
		return res.Outcomes[i], true
	})
	for _, lvl := range byLevel(starts) {
		notReady := deps.await(ctx, lvl)
		a.each(ctx, lvl, record, func(ctx context.Context, c Change) Outcome {
			o := a.start(ctx, c)
			o.NotReady = notReady(c)
			return o
		})
	}
	return res
}

type applier struct {
	ex          instance.Executor
	logger      *slog.Logger
	parallelism int
}

// each runs fn for every change with at most a.parallelism at once
// (errgroup's limit), and waits for all of them. Once ctx is done, the
// changes not yet begun fail with its error.
func (a *applier) each(ctx context.Context, changes []Change, record func(Outcome), fn func(context.Context, Change) Outcome) {
	var g errgroup.Group
	g.SetLimit(a.parallelism)
	for _, c := range changes {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				record(Outcome{ID: c.ID, Action: c.Action, Err: err})
				return nil
			}
			o := fn(ctx, c)
			switch {
			case o.Err != nil && ctx.Err() != nil:
				// Canceled (the daemon stops, the deadline): the
				// caller says so once, not as the failure of each.
				a.logger.Debug("apply canceled", "instance", c.ID.String(), "action", c.Action.String(), "error", o.Err)
			case o.Err != nil:
				a.logger.Error("apply failed", "instance", c.ID.String(), "action", c.Action.String(), "error", o.Err)
			case !o.Skipped:
				a.logger.Info("applied", "instance", c.ID.String(), "action", c.Action.String())
			}
			record(o)
			return nil
		})
	}
	_ = g.Wait() // every fn returns nil: failures are outcomes
}

func (a *applier) delete(ctx context.Context, c Change) Outcome {
	if r, ok := a.ex.(instance.Remover); ok {
		// A deleted instance leaves no config.json (secrets) behind.
		return Outcome{ID: c.ID, Action: c.Action, Err: r.Remove(ctx, c.ID)}
	}
	return Outcome{ID: c.ID, Action: c.Action, Err: a.ex.Stop(ctx, c.ID)}
}

func (a *applier) update(ctx context.Context, c Change) Outcome {
	u, ok := a.ex.(instance.Updater)
	if !ok {
		return Outcome{ID: c.ID, Action: c.Action, Skipped: true}
	}
	return Outcome{ID: c.ID, Action: c.Action, Err: u.Update(ctx, *c.After)}
}

func (a *applier) start(ctx context.Context, c Change) Outcome {
	o := Outcome{ID: c.ID, Action: c.Action}
	if c.Action == Replace {
		if err := a.ex.Stop(ctx, c.ID); err != nil {
			// The old process may still run: starting another would duplicate it.
			o.Err = fmt.Errorf("stop old: %w", err)
			return o
		}
	}
	err := a.ex.Start(ctx, *c.After)
	if err == nil || c.Action != Replace || c.Before == nil {
		o.Err = err
		return o
	}
	o.Err = fmt.Errorf("start new: %w", err)
	o.RolledBack = true
	a.logger.Warn("replace failed, starting the previous spec again", "instance", c.ID.String(), "error", err)
	if rerr := a.ex.Start(ctx, *c.Before); rerr != nil {
		o.RolledBack = false
		o.Err = errors.Join(o.Err, fmt.Errorf("roll back: %w", rerr))
	}
	return o
}

// byLevel groups changes by the depends_on level of their plug, lowest
// first, keeping plan order within a level.
func byLevel(changes []Change) [][]Change {
	return instance.ByLevel(changes, levels(changes), func(c Change) string { return c.ID.Plug })
}
