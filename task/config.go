package task

import (
	"fmt"
	"time"
)

// Defaults of a task's settings, used where a Config leaves a field zero.
const (
	DefaultMaxConcurrent = 1
	DefaultTimeout       = time.Minute
	// DefaultOutputLimit is the output a result keeps unless the caller asks
	// for more; MaxOutputLimit is the most a caller may ask for unless the
	// plug raises it.
	DefaultOutputLimit = 64 << 10
	MaxOutputLimit     = 16 << 20
	// DefaultHistory is how many runs per plug the history keeps.
	DefaultHistory = 50
	// MaxInput is the largest input a call may send.
	MaxInput = 16 << 20
	// StderrTail is how much of the end of stderr a result keeps.
	StderrTail = 4 << 10
	// historyOutput is how much of a run's output the history keeps on disk.
	historyOutput = 4 << 10
)

// Config is how a plug runs as a task: spec's task {} and schedule {} blocks,
// with plugs.hcl's over the manifest's.
type Config struct {
	// MaxConcurrent is the number of runs of the plug at the same time
	// (all its instances together). Default DefaultMaxConcurrent.
	MaxConcurrent int
	// Queue is how many calls may wait for a free slot; beyond it a call is
	// answered busy. Default 4 × MaxConcurrent; negative means no queue.
	Queue int
	// Timeout bounds one run (a caller may ask for less, or for more up to
	// MaxTimeout). Default DefaultTimeout.
	Timeout time.Duration
	// MaxTimeout is the most a caller may ask for; default Timeout.
	MaxTimeout time.Duration
	// OutputLimit is the output kept unless a caller asks for more, up to
	// MaxOutput. Defaults DefaultOutputLimit and MaxOutputLimit.
	OutputLimit int
	MaxOutput   int
	// History is how many runs the plug's history keeps; default DefaultHistory.
	History int

	Schedules []Schedule
}

// withDefaults returns c with its zero fields set.
func (c Config) withDefaults() Config {
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	switch {
	case c.Queue == 0:
		c.Queue = 4 * c.MaxConcurrent
	case c.Queue < 0:
		c.Queue = 0
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxTimeout < c.Timeout {
		c.MaxTimeout = c.Timeout
	}
	if c.MaxOutput <= 0 {
		c.MaxOutput = MaxOutputLimit
	}
	if c.OutputLimit <= 0 {
		c.OutputLimit = min(DefaultOutputLimit, c.MaxOutput)
	}
	if c.OutputLimit > c.MaxOutput {
		c.OutputLimit = c.MaxOutput
	}
	if c.History <= 0 {
		c.History = DefaultHistory
	}
	return c
}

// Schedule is one schedule {} block: either Cron or Every.
type Schedule struct {
	// Cron is a five-field cron expression or a descriptor (@hourly, @daily…).
	Cron string
	// Every runs the task each interval of elapsed time; wall-clock steps do
	// not move it.
	Every time.Duration
	// UTC reads Cron in UTC instead of the host's time zone.
	UTC bool
	// Persistent runs once at start a run that was due while the daemon was
	// down (systemd's Persistent=).
	Persistent bool
	// Jitter delays each run by a fixed offset in [0, Jitter), derived from
	// the instance's name, so that many plugs on one schedule do not start
	// at the same instant. Nil means the default: a tenth of the interval,
	// at most 30 s; zero means none.
	Jitter *time.Duration
	// Overlap lets a due run start while another run of the same instance
	// is still going; by default it is skipped and counted.
	Overlap bool
	// Input is sent on stdin to scheduled runs.
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
