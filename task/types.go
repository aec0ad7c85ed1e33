package task

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/plugs-dev/plugs/instance"
)

// ID names one instance of one plug.
type ID = instance.ID

func compareID(a, b ID) int {
	if c := strings.Compare(a.Plug, b.Plug); c != 0 {
		return c
	}
	return strings.Compare(a.Instance, b.Instance)
}

// Target is one task instance: what render made of it (its config, params,
// secrets and environment, exactly as for a service) and its Task settings
// with the defaults filled.
type Target struct {
	Spec   instance.Spec
	Config Config
}

// Runner runs one process of an instance to its end. The runner package's
// RunOnce implements it: the instance's environment (with Run.Env added),
// its own process group, stdin from Run.Input, Run.Timeout (stop signal,
// then SIGKILL of the group, grandchildren included), output capped at
// Run.MaxOutput. An error means the process could not be started.
type Runner interface {
	RunOnce(ctx context.Context, spec instance.Spec, run Run) (Outcome, error)
}

// Run is what one run is given beyond its instance's spec.
type Run struct {
	ID        string
	Input     []byte
	Env       map[string]string
	Timeout   time.Duration
	MaxOutput int
}

// Outcome is how one run ended, as the Runner saw it.
type Outcome struct {
	ExitCode        int    // -1 when killed by a signal
	Signal          string // "SIGKILL", or "" when it exited
	TimedOut        bool
	OOMKilled       bool   // the kernel killed it at its memory limit
	Output          []byte // stdout, at most Run.MaxOutput bytes
	OutputTruncated bool
	Stderr          []byte // the end of stderr
	StartedAt       time.Time
	Duration        time.Duration
}

// The results of a run, as in plugs_task_runs_total{result}.
const (
	ResultSuccess = "success" // exit code 0
	ResultFailure = "failure" // another exit code, or a signal
	ResultTimeout = "timeout" // killed at its timeout
	ResultError   = "error"   // could not be started
)

// Results lists every result, for metrics.
var Results = []string{ResultSuccess, ResultFailure, ResultTimeout, ResultError}

// The reasons a due or called run did not start, as in
// plugs_task_skipped_total{reason}.
const (
	SkipOverlap = "overlap" // a scheduled run came due while the previous one still ran
	SkipBusy    = "busy"    // max_concurrent runs and a full queue
)

// Result is the answer to a call and one entry of the history.
type Result struct {
	RunID    string  `json:"run_id"`
	Plug     string  `json:"plug"`
	Instance string  `json:"instance"`
	Trigger  Trigger `json:"trigger"`
	Result   string  `json:"result"`
	ExitCode int     `json:"exit_code"`
	Signal   string  `json:"signal,omitempty"`
	// OOMKilled: the kernel killed the run at its memory limit.
	OOMKilled bool `json:"oom_killed,omitempty"`
	// Output is stdout: the JSON value itself when stdout is one whole JSON
	// document (OutputType "json"), else a JSON string ("text").
	Output          json.RawMessage `json:"output"`
	OutputType      string          `json:"output_type"`
	OutputTruncated bool            `json:"output_truncated"`
	StderrTail      string          `json:"stderr_tail"`
	StartedAt       time.Time       `json:"started_at"`
	// Duration is in seconds.
	Duration float64 `json:"duration"`
	// Error says why the run could not start (Result "error").
	Error string `json:"error,omitempty"`
}

// Output types of a Result.
const (
	OutputJSON = "json"
	OutputText = "text"
)

// setOutput fills Output and OutputType from raw stdout.
func (r *Result) setOutput(out []byte, truncated bool) {
	trimmed := strings.TrimSpace(string(out))
	if !truncated && trimmed != "" && json.Valid([]byte(trimmed)) {
		r.Output, r.OutputType = json.RawMessage(trimmed), OutputJSON
	} else {
		b, _ := json.Marshal(string(out))
		r.Output, r.OutputType = b, OutputText
	}
	r.OutputTruncated = truncated
}

// Text returns the output as the plugin wrote it (for a JSON output, its
// compact JSON).
func (r *Result) Text() string {
	if r.OutputType == OutputText {
		var s string
		if json.Unmarshal(r.Output, &s) == nil {
			return s
		}
	}
	var b bytes.Buffer
	if json.Compact(&b, r.Output) == nil {
		return b.String()
	}
	return string(r.Output)
}

// Request is one call of a task.
type Request struct {
	Plug string
	// Instance may be empty: the plug's only instance, or "default".
	Instance string
	Input    []byte
	// Timeout and MaxOutput, when not zero, replace the plug's defaults, up
	// to its max_timeout and max_output.
	Timeout   time.Duration
	MaxOutput int
	Trigger   Trigger // default TriggerCall
}

// ErrNotFound is returned for a plug or instance that is not a task here.
var ErrNotFound = errors.New("no such task")

// BusyError is returned when a plug runs max_concurrent runs and its queue
// is full. RetryAfter estimates when a slot frees.
type BusyError struct {
	Plug          string
	MaxConcurrent int
	Queue         int
	RetryAfter    time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("task %s is busy: %d running, %d queued (max_concurrent %d); retry after %s",
		e.Plug, e.MaxConcurrent, e.Queue, e.MaxConcurrent, e.RetryAfter)
}

// InputError is a call that asks for something the plug does not allow.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }
