package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// plantedSecret is in every fake instance's Config and must never appear
// in a page or an event.
const plantedSecret = "hunter2-planted-secret"

// fakeBackend is a daemon in memory: instances whose pids change on
// restart, a log per instance, a plan, plugins.
type fakeBackend struct {
	mu        sync.Mutex
	status    Status
	instances []InstanceStatus
	nextPID   int
	logs      map[InstanceID]*strings.Builder
	logWake   chan struct{}
	plan      *PlanReport
	planErr   error
	applied   int
	restarts  []InstanceID
	overrides map[InstanceID]string
	plugins   []Plugin
	observes  atomic.Int64 // calls of Observe
}

var _ Backend = (*fakeBackend)(nil)
var _ Controller = (*fakeBackend)(nil)

func newFake(n int) *fakeBackend {
	f := &fakeBackend{nextPID: 1000, logs: map[InstanceID]*strings.Builder{}, logWake: make(chan struct{}), overrides: map[InstanceID]string{}}
	now := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	f.status.Daemon = DaemonStatus{
		PID: 42, Started: now.Add(-time.Hour), ConfigFile: "/srv/plugs/plugs.hcl", Mode: "file",
		ConfigRevision: "0123456789abcdef", BrokerURL: "tcp://127.0.0.1:1883", BrokerConnected: true,
		LastReconcile: &ReconcileStatus{At: now.Add(-time.Minute), Duration: 12 * time.Millisecond, Revision: "0123456789abcdef"},
	}
	for i := range n {
		plug := fmt.Sprintf("plug-%02d", i%10)
		id := InstanceID{Plug: plug, Instance: fmt.Sprintf("inst-%04d", i)}
		cfg := map[string]any{"plug": plug, "instance": id.Instance, "params": map[string]any{"token": plantedSecret, "interval": "5s"}}
		red := map[string]any{"plug": plug, "instance": id.Instance, "params": map[string]any{"token": sensitive, "interval": "5s"}}
		cb, _ := json.Marshal(cfg)
		rb, _ := json.Marshal(red)
		st := InstanceStatus{ID: id, State: "running", PID: f.pid(), StartedAt: now.Add(-time.Duration(i) * time.Second), Restarts: i % 3}
		st.Spec.ID = id
		st.Spec.Version = "1.2.0"
		st.Spec.Revision = "abcdef0123456789abcdef"
		st.Spec.Config = cb
		st.Spec.Redacted = rb
		st.Spec.Command = []string{"./run", "--flag"}
		st.Spec.Env = map[string]string{"TOKEN": plantedSecret}
		f.instances = append(f.instances, st)
		b := &strings.Builder{}
		fmt.Fprintf(b, "hello from %s\n", id)
		f.logs[id] = b
	}
	f.plan = &PlanReport{Revision: "fedcba9876543210", Changes: []Change{
		{Plug: "plug-00", Instance: "inst-0000", Action: "replace", Reason: "config changed", Diff: []string{`-   "token": "(sensitive)"`, `+   "token": "(sensitive)"`}},
	}, Replace: 1}
	f.plugins = []Plugin{{
		Plug: "plug-00", Version: "1.2.0", Revision: "abcdef", Source: "git::https://user:" + plantedSecret + "@git.example.org/p.git",
		Name: "heart-rate", Description: "Reads a strap", Instructions: "Pair it first.", Kind: "script", HasSetup: true,
		Params: []Param{{Name: "token", Type: "string", Secret: true, Default: plantedSecret}, {Name: "interval", Type: "string", Default: "10s"}},
	}}
	return f
}

func (f *fakeBackend) pid() int { f.nextPID++; return f.nextPID }

func (f *fakeBackend) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.status
	if s.Daemon.LastReconcile != nil {
		l := *s.Daemon.LastReconcile
		s.Daemon.LastReconcile = &l
	}
	return s
}

func (f *fakeBackend) Observe() []InstanceStatus {
	f.observes.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]InstanceStatus, len(f.instances))
	copy(out, f.instances)
	return out
}

func (f *fakeBackend) Plan(ctx context.Context) (*PlanReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.planErr != nil {
		return nil, f.planErr
	}
	p := *f.plan
	return &p, nil
}

func (f *fakeBackend) Apply(ctx context.Context) (*ApplyReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied++
	clear(f.overrides)
	return &ApplyReport{Plan: *f.plan, Replaced: f.plan.Replace}, nil
}

func (f *fakeBackend) update(id InstanceID, fn func(*InstanceStatus)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.instances {
		if f.instances[i].ID == id {
			fn(&f.instances[i])
			return nil
		}
	}
	return fmt.Errorf("no instance %s", id)
}

func (f *fakeBackend) Restart(ctx context.Context, id InstanceID) error {
	return f.update(id, func(s *InstanceStatus) {
		f.restarts = append(f.restarts, id)
		s.PID = f.pid()
		s.StartedAt = time.Now()
	})
}

func (f *fakeBackend) Stop(ctx context.Context, id InstanceID) error {
	return f.update(id, func(s *InstanceStatus) {
		s.PID, s.State, s.StartedAt = 0, "stopped", time.Time{}
		f.overrides[id] = "stopped"
	})
}

func (f *fakeBackend) Start(ctx context.Context, id InstanceID) error {
	return f.update(id, func(s *InstanceStatus) {
		s.PID, s.State, s.StartedAt = f.pid(), "running", time.Now()
		f.overrides[id] = "started"
	})
}

func (f *fakeBackend) Kill(ctx context.Context, id InstanceID) error {
	return f.crash(id, "SIGKILL")
}

// crash ends an instance's process as a signal would, and restarts it.
func (f *fakeBackend) crash(id InstanceID, signal string) error {
	return f.update(id, func(s *InstanceStatus) {
		s.LastExit = &Exit{Code: -1, Signal: signal, At: time.Now()}
		s.Restarts++
		s.PID = f.pid()
		s.StartedAt = time.Now()
	})
}

func (f *fakeBackend) Overrides() map[InstanceID]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[InstanceID]string, len(f.overrides))
	for k, v := range f.overrides {
		out[k] = v
	}
	return out
}

func (f *fakeBackend) appendLog(id InstanceID, text string) {
	f.mu.Lock()
	f.logs[id].WriteString(text)
	close(f.logWake)
	f.logWake = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeBackend) Logs(ctx context.Context, w io.Writer, id InstanceID, n int, follow bool) error {
	f.mu.Lock()
	b := f.logs[id]
	if b == nil {
		f.mu.Unlock()
		return fmt.Errorf("no log for %s", id)
	}
	text := b.String()
	wake := f.logWake
	f.mu.Unlock()
	if n != 0 {
		if _, err := io.WriteString(w, text); err != nil {
			return err
		}
	}
	if !follow {
		return nil
	}
	off := len(text)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
		f.mu.Lock()
		text = f.logs[id].String()
		wake = f.logWake
		f.mu.Unlock()
		if _, err := io.WriteString(w, text[off:]); err != nil {
			return err
		}
		off = len(text)
	}
}

func (f *fakeBackend) Plugins() []Plugin {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Plugin(nil), f.plugins...)
}

// fakeFull is the fake with health and tasks.
type fakeFull struct {
	*fakeBackend
	inputs []string
}

var (
	_ HealthReader = (*fakeFull)(nil)
	_ TaskRunner   = (*fakeFull)(nil)
)

func (f *fakeFull) Health() map[InstanceID]Health {
	return map[InstanceID]Health{
		{Plug: "plug-00", Instance: "inst-0000"}: {State: "healthy", Checks: []Check{{Name: "alive", Type: "exec", Passing: true}}},
		{Plug: "plug-01", Instance: "inst-0001"}: {State: "unhealthy", Checks: []Check{{Name: "alive", Type: "http", ConsecutiveFailures: 3}}},
	}
}

var taskID = InstanceID{Plug: "report", Instance: "default"}

func (f *fakeFull) Tasks() []Task {
	return []Task{{ID: taskID, Schedule: []string{"every 1h"}}}
}

func (f *fakeFull) RunTask(ctx context.Context, id InstanceID, input []byte) (TaskRun, error) {
	if id != taskID {
		return TaskRun{}, fmt.Errorf("no task %s", id)
	}
	f.mu.Lock()
	f.inputs = append(f.inputs, string(input))
	f.mu.Unlock()
	return TaskRun{RunID: "r1", Trigger: "call", Result: "success", Output: `{"echo":` + strconv.Quote(string(input)) + `}`, StartedAt: time.Now()}, nil
}

func (f *fakeFull) TaskRuns(id InstanceID, n int) ([]TaskRun, error) {
	return []TaskRun{{RunID: "r0", Trigger: "schedule", Result: "failure", ExitCode: 2}}, nil
}
