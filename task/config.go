package task

import "github.com/plugs-dev/plugs/instance"

// Config is how a plug runs as a task: instance.Spec.Task.
type Config = instance.Task

// Schedule is one of a task's schedules.
type Schedule = instance.Schedule

// Limits of a call, beyond the plug's own.
const (
	// MaxInput is the largest input a call may send.
	MaxInput = 16 << 20
	// StderrTail is how much of the end of stderr a result keeps.
	StderrTail = 4 << 10
	// historyOutput is how much of a run's output the history keeps on disk.
	historyOutput = 4 << 10
)
