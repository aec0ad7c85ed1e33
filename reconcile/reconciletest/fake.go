// Package reconciletest holds test doubles of the reconcile package: a fake
// Executor that records its calls, and a conformance suite that any
// instance.Executor (the fake and the real runner) must pass.
package reconciletest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/plugs-dev/plugs/instance"
)

// Call is one recorded call of a FakeExecutor.
type Call struct {
	Op   string // "start", "stop", "restart", "update"
	ID   instance.ID
	Spec instance.Spec // for start and update
}

// String renders the call as "start a/default".
func (c Call) String() string { return c.Op + " " + c.ID.String() }

// FakeExecutor is an in-memory instance.Executor (and instance.Updater).
// Started instances are running at once with a fresh fake pid. Like the real
// runner, a start whose command names a file (it contains a slash) that does
// not exist fails, and leaves the instance failed.
//
// Set the hooks before the first call; they run outside the executor's lock
// and may block, to hold calls in flight.
type FakeExecutor struct {
	// BeforeStart, when set, runs first in Start; its error fails the start
	// (the instance is then failed, as with the real runner).
	BeforeStart func(ctx context.Context, spec instance.Spec) error
	// BeforeStop, when set, runs first in Stop; its error fails the stop and
	// leaves the instance as it was.
	BeforeStop func(ctx context.Context, id instance.ID) error

	mu        sync.Mutex
	instances map[instance.ID]*instance.Status
	calls     []Call
	nextPID   int
	inflight  int
	peak      int
}

var (
	_ instance.Executor = (*FakeExecutor)(nil)
	_ instance.Updater  = (*FakeExecutor)(nil)
)

// NewFakeExecutor returns a fake that already runs observed (e.g. what a
// test wants Plan to compare against).
func NewFakeExecutor(observed ...instance.Status) *FakeExecutor {
	f := &FakeExecutor{instances: make(map[instance.ID]*instance.Status), nextPID: 1000}
	for _, st := range observed {
		st := st
		f.instances[st.ID] = &st
	}
	return f
}

func (f *FakeExecutor) enter(c Call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	f.inflight++
	f.peak = max(f.peak, f.inflight)
}

func (f *FakeExecutor) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inflight--
}

// Start records the call and runs spec, replacing a stopped or failed
// instance of the same ID. Starting a running instance is an error.
func (f *FakeExecutor) Start(ctx context.Context, spec instance.Spec) error {
	f.enter(Call{Op: "start", ID: spec.ID, Spec: spec})
	defer f.leave()
	err := ctx.Err()
	if err == nil && f.BeforeStart != nil {
		err = f.BeforeStart(ctx, spec)
	}
	if err == nil {
		err = checkCommand(spec)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old, ok := f.instances[spec.ID]; ok && old.State != instance.StateFailed && old.State != instance.StateStopped {
		return fmt.Errorf("start %s: already %s", spec.ID, old.State)
	}
	st := &instance.Status{ID: spec.ID, Spec: spec}
	if err != nil {
		st.State, st.Reason = instance.StateFailed, err.Error()
		f.instances[spec.ID] = st
		return fmt.Errorf("start %s: %w", spec.ID, err)
	}
	f.nextPID++
	st.State, st.PID = instance.StateRunning, f.nextPID
	f.instances[spec.ID] = st
	return nil
}

// checkCommand fails like exec does for a command file that does not exist.
func checkCommand(spec instance.Spec) error {
	if len(spec.Command) == 0 {
		return errors.New("empty command")
	}
	name := spec.Command[0]
	if !strings.Contains(name, "/") {
		return nil
	}
	if !filepath.IsAbs(name) {
		name = filepath.Join(spec.Dir, name)
	}
	if _, err := os.Stat(name); err != nil {
		return fmt.Errorf("command: %w", err)
	}
	return nil
}

// Stop records the call and forgets the instance; unknown ones are a no-op.
func (f *FakeExecutor) Stop(ctx context.Context, id instance.ID) error {
	f.enter(Call{Op: "stop", ID: id})
	defer f.leave()
	if f.BeforeStop != nil {
		if err := f.BeforeStop(ctx, id); err != nil {
			return fmt.Errorf("stop %s: %w", id, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.instances, id)
	return nil
}

// Restart records the call and gives the instance a new pid.
func (f *FakeExecutor) Restart(ctx context.Context, id instance.ID) error {
	f.enter(Call{Op: "restart", ID: id})
	defer f.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.instances[id]
	if !ok {
		return fmt.Errorf("restart %s: no such instance", id)
	}
	f.nextPID++
	st.State, st.PID, st.Restarts = instance.StateRunning, f.nextPID, st.Restarts+1
	return nil
}

// Update records the call and swaps the spec of a known instance in place.
func (f *FakeExecutor) Update(ctx context.Context, spec instance.Spec) error {
	f.enter(Call{Op: "update", ID: spec.ID, Spec: spec})
	defer f.leave()
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.instances[spec.ID]
	if !ok {
		return fmt.Errorf("update %s: no such instance", spec.ID)
	}
	st.Spec = spec
	return nil
}

// Observe returns every known instance, sorted by ID.
func (f *FakeExecutor) Observe() []instance.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]instance.Status, 0, len(f.instances))
	for _, st := range f.instances {
		out = append(out, *st)
	}
	slices.SortFunc(out, func(a, b instance.Status) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	return out
}

// Calls returns the calls so far, in the order they began.
func (f *FakeExecutor) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// PeakInFlight is the most calls that were ever in progress at once.
func (f *FakeExecutor) PeakInFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak
}
