package health

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Health values of an instance (Status.Health).
const (
	// None: the instance does not run, or runs and declares no checks.
	None = ""
	// Pending: it runs, and not every check has passed since its start.
	Pending = "pending"
	// Healthy: every check passes.
	Healthy = "healthy"
	// Unhealthy: it was ready, and a check now fails.
	Unhealthy = "unhealthy"
)

// Status is the health of one instance.
type Status struct {
	Health string // None, Pending, Healthy or Unhealthy
	// Running says a process runs (the health of a stopped instance is None).
	Running bool
	// Ready says every check has passed at least once since the process
	// started (at once for an instance without checks); ReadyAt is when.
	Ready   bool
	ReadyAt time.Time
	// HealthySince is when the instance last became healthy (zero unless
	// it is: ready and every check passing).
	HealthySince time.Time
	// LastFailure is "check: output" of the last failed probe, kept short.
	LastFailure string
	// NotifyStatus is the last STATUS= a notify program sent.
	NotifyStatus string
	Checks       []CheckStatus
	// Restarts counts the restarts check_restart asked for.
	Restarts int
}

// Passing reports whether the instance counts as healthy for metrics,
// depends_on and rollouts: it runs, is ready, and no check fails.
func (s Status) Passing() bool {
	return s.Running && s.Ready && s.Health != Unhealthy && s.Health != Pending
}

// CheckStatus is the state of one check.
type CheckStatus struct {
	Name, Type string
	Passing    bool // passed, and fewer than Failures probes failed since
	// ConsecutiveFailures counts failures since the last pass.
	ConsecutiveFailures int
	LastResult          time.Time // zero: no result yet
	LastDuration        time.Duration
	Output              string // of the last probe, short
	Passes, Fails       uint64 // results since the daemon started
}

// MaxOutput bounds kept outputs, in bytes.
const MaxOutput = 200

// shorten makes out one short line: whitespace runs become one space, and
// it is cut at MaxOutput bytes on a rune boundary.
func shorten(out string) string {
	out = strings.Join(strings.Fields(out), " ")
	if len(out) <= MaxOutput {
		return out
	}
	cut := MaxOutput - len("…")
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return out[:cut] + "…"
}
