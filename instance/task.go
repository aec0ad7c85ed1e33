package instance

import (
	"fmt"
	"time"
)

// Task defaults, filled by Task.WithDefaults (render calls it).
const (
	DefaultTaskMaxConcurrent = 1
	DefaultTaskTimeout       = time.Minute
	// DefaultTaskOutputLimit is the output a result keeps unless the caller
	// asks for more, up to MaxOutput (default DefaultTaskMaxOutput).
	DefaultTaskOutputLimit = 64 << 10
	DefaultTaskMaxOutput   = 16 << 20
	// DefaultTaskHistory is how many runs per plug the history keeps.
	DefaultTaskHistory = 50
	// MaxDefaultJitter caps the automatic jitter of a schedule.
	MaxDefaultJitter = 30 * time.Second
)

// Task says how an instance runs as a task (package task): called (plugs
// exec, the task API, MQTT request/response) or on its schedules, never
// kept running. Every instance of a plug carries the same Task.
type Task struct {
	// MaxConcurrent is the number of runs of the plug at the same time, all
	// its instances together.
	MaxConcurrent int
	// Queue is how many calls may wait for a free slot; beyond it a call is
	// answered busy. 0 is the default, 4 × MaxConcurrent; negative: no queue.
	Queue int
	// Timeout bounds one run; a caller may ask for less, or for more up to
	// MaxTimeout (default Timeout).
	Timeout    time.Duration
	MaxTimeout time.Duration
	// OutputLimit is the stdout a result keeps unless a caller asks for
	// more, up to MaxOutput. Bytes.
	OutputLimit int
	MaxOutput   int
	// History is how many runs of the plug the history keeps.
	History int

	Schedules []Schedule
}

// WithDefaults returns t with every unset field filled; it is idempotent.
func (t Task) WithDefaults() Task {
	if t.MaxConcurrent <= 0 {
		t.MaxConcurrent = DefaultTaskMaxConcurrent
	}
	if t.Queue == 0 {
		t.Queue = 4 * t.MaxConcurrent
	}
	if t.Timeout <= 0 {
		t.Timeout = DefaultTaskTimeout
	}
	if t.MaxTimeout < t.Timeout {
		t.MaxTimeout = t.Timeout
	}
	if t.MaxOutput <= 0 {
		t.MaxOutput = DefaultTaskMaxOutput
	}
	if t.OutputLimit <= 0 {
		t.OutputLimit = min(DefaultTaskOutputLimit, t.MaxOutput)
	}
	t.OutputLimit = min(t.OutputLimit, t.MaxOutput)
	if t.History <= 0 {
		t.History = DefaultTaskHistory
	}
	return t
}

// Schedule is one schedule: either Cron or Every.
type Schedule struct {
	// Cron is a five-field cron expression or a descriptor (@hourly, @daily…),
	// read in the host's time zone unless UTC.
	Cron string
	UTC  bool
	// Every runs the task each interval of elapsed time; wall-clock steps
	// do not move it.
	Every time.Duration
	// Persistent runs once at start a run that came due while the daemon
	// was down (systemd's Persistent=).
	Persistent bool
	// Jitter delays every run by a fixed offset in [0, Jitter) derived from
	// the instance's name. Nil is automatic: a tenth of the schedule's
	// period, at most MaxDefaultJitter. Zero: none.
	Jitter *time.Duration
	// Overlap lets a due run start while the previous run of the same
	// instance still goes; otherwise it is skipped and counted.
	Overlap bool
	// Input is sent on stdin (and in PLUGS_INPUT) to scheduled runs.
	Input string
}

// Key identifies a schedule in the persisted last-run times: a changed
// schedule starts afresh.
func (s Schedule) Key() string {
	if s.Cron != "" {
		tz := "local"
		if s.UTC {
			tz = "utc"
		}
		return "cron " + tz + " " + s.Cron
	}
	return "every " + s.Every.String()
}

func (s Schedule) String() string {
	if s.Cron != "" {
		if s.UTC {
			return s.Cron + " (UTC)"
		}
		return s.Cron
	}
	return fmt.Sprintf("every %s", s.Every)
}
