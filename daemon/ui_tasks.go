package daemon

import (
	"context"
	"encoding/json"
	"time"

	"github.com/plugs-dev/plugs/task"
	"github.com/plugs-dev/plugs/ui"
)

// The dashboard's tasks page (run now with an input, the last runs) goes
// through the same task manager as plugs exec and the task API: the same
// admission (max_concurrent, busy), history and metrics.
var _ ui.TaskRunner = uiBackend{}

func (b uiBackend) taskManager() *task.Manager {
	if b.d.tasks == nil {
		return nil
	}
	return b.d.tasks.mgr
}

// Tasks lists the task instances.
func (b uiBackend) Tasks() []ui.Task {
	m := b.taskManager()
	if m == nil {
		return nil
	}
	var out []ui.Task
	for _, st := range m.Status() {
		t := ui.Task{ID: st.ID, Running: st.Running, Queued: st.Queued, Schedule: st.Schedule}
		if st.LastRun != nil {
			r := uiTaskRun(*st.LastRun)
			t.LastRun = &r
		}
		out = append(out, t)
	}
	return out
}

// RunTask runs a task now, as a call, and waits for its result.
func (b uiBackend) RunTask(ctx context.Context, id ui.InstanceID, input []byte) (ui.TaskRun, error) {
	m := b.taskManager()
	if m == nil {
		return ui.TaskRun{}, task.ErrNotFound
	}
	res, err := m.Exec(ctx, task.Request{Plug: id.Plug, Instance: id.Instance, Input: input})
	if err != nil {
		return ui.TaskRun{}, err
	}
	return uiTaskRun(*res), nil
}

// TaskRuns returns a task's last n runs, newest first.
func (b uiBackend) TaskRuns(id ui.InstanceID, n int) ([]ui.TaskRun, error) {
	m := b.taskManager()
	if m == nil {
		return nil, task.ErrNotFound
	}
	runs, err := m.Runs(id.Plug, id.Instance, n)
	if err != nil {
		return nil, err
	}
	out := make([]ui.TaskRun, len(runs))
	for i, r := range runs {
		out[i] = uiTaskRun(r)
	}
	return out, nil
}

// uiTaskRun is r in the dashboard's terms: text output unquoted, JSON
// output as its text.
func uiTaskRun(r task.Result) ui.TaskRun {
	out := string(r.Output)
	if r.OutputType != task.OutputJSON {
		var s string
		if json.Unmarshal(r.Output, &s) == nil {
			out = s
		}
	}
	return ui.TaskRun{
		RunID: r.RunID, Trigger: string(r.Trigger), Result: r.Result, ExitCode: r.ExitCode, Signal: r.Signal,
		Output: out, OutputTruncated: r.OutputTruncated, StderrTail: r.StderrTail, StartedAt: r.StartedAt,
		Duration: time.Duration(r.Duration * float64(time.Second)), Error: r.Error,
	}
}
