package task

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/clock"
)

// fakeRunner answers runs without processes: it echoes the input, or runs
// fn when set, and records the peak of concurrent runs.
type fakeRunner struct {
	clock clock.Clock
	fn    func(ctx context.Context, spec instance.Spec, run Run) (Outcome, error)

	active, peak atomic.Int64
	mu           sync.Mutex
	runs         []fakeRun
}

type fakeRun struct {
	ID      ID
	At      time.Time
	Trigger string
	Input   string
	Env     map[string]string
}

var _ Runner = (*fakeRunner)(nil)

func (f *fakeRunner) RunOnce(ctx context.Context, spec instance.Spec, run Run) (Outcome, error) {
	n := f.active.Add(1)
	defer f.active.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	now := time.Now()
	if f.clock != nil {
		now = f.clock.Now()
	}
	f.mu.Lock()
	f.runs = append(f.runs, fakeRun{ID: spec.ID, At: now, Trigger: run.Env["PLUGS_TRIGGER"], Input: string(run.Input), Env: run.Env})
	f.mu.Unlock()
	if f.fn != nil {
		return f.fn(ctx, spec, run)
	}
	out := run.Input
	trunc := false
	if len(out) > run.MaxOutput {
		out, trunc = out[:run.MaxOutput], true
	}
	return Outcome{Output: out, OutputTruncated: trunc, StartedAt: now, Duration: time.Millisecond}, nil
}

func (f *fakeRunner) recorded() []fakeRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRun(nil), f.runs...)
}

func target(plug, inst string, cfg Config) instance.Spec {
	return instance.Spec{ID: ID{Plug: plug, Instance: inst}, Task: &cfg}
}

// fakeObserver records what metrics would see.
type fakeObserver struct {
	mu      sync.Mutex
	runs    map[string]int // plug/result
	skipped map[string]int // plug/reason
	success map[string]time.Time
}

func newFakeObserver() *fakeObserver {
	return &fakeObserver{runs: map[string]int{}, skipped: map[string]int{}, success: map[string]time.Time{}}
}

func (o *fakeObserver) TaskRun(plug, result string, _ time.Duration, last time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.runs[plug+"/"+result]++
	o.success[plug] = last
}
func (o *fakeObserver) TaskSkipped(plug, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.skipped[plug+"/"+reason]++
}
func (o *fakeObserver) TaskKnown(plug string, last time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.success[plug] = last
}
func (o *fakeObserver) TaskForget(plug string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.success, plug)
}
func (o *fakeObserver) count(key string, skipped bool) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	if skipped {
		return o.skipped[key]
	}
	return o.runs[key]
}
