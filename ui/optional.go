package ui

import (
	"context"
	"time"
)

// HealthReader is a backend that checks its instances' health (package
// health). Without it the pages have no health column.
type HealthReader interface {
	// Health returns the health of every instance that has one.
	Health() map[InstanceID]Health
}

// Health is one instance's health. Check outputs are not carried: a
// probe's output is the plugin's and may hold anything.
type Health struct {
	State  string // "", "pending", "healthy" or "unhealthy"
	Checks []Check
}

// Check is the state of one health check.
type Check struct {
	Name, Type          string
	Passing             bool
	ConsecutiveFailures int
	LastResult          time.Time
}

// TaskRunner is a backend that runs task plugs (package task). Without it
// the dashboard has no tasks page.
type TaskRunner interface {
	// Tasks lists the task instances.
	Tasks() []Task
	// RunTask runs a task now with input (its PLUGS_INPUT) and waits for it.
	RunTask(ctx context.Context, id InstanceID, input []byte) (TaskRun, error)
	// TaskRuns returns a task's last n runs, newest first.
	TaskRuns(id InstanceID, n int) ([]TaskRun, error)
}

// Task is one task instance.
type Task struct {
	ID       InstanceID
	Running  int
	Queued   int
	Schedule []string
	LastRun  *TaskRun
}

// TaskRun is one run of a task.
type TaskRun struct {
	RunID           string
	Trigger         string // "call", "schedule", ...
	Result          string // "success", "failure", "error", ...
	ExitCode        int
	Signal          string
	Output          string
	OutputTruncated bool
	StderrTail      string
	StartedAt       time.Time
	Duration        time.Duration
	Error           string
}
