package mqtt

import (
	"encoding/json"
	"time"
)

// TaskStateMessage is the retained state of a task instance on its state
// topic: "idle" or "running" (a task is never kept running), and its last
// run. The last run's output is not in it: outputs are the callers'.
type TaskStateMessage struct {
	State    string // "idle" or "running"
	Version  string
	Revision string
	Since    time.Time
	LastRun  *TaskRun
	Run      string // the daemon's RunID, as in StateMessage
}

// TaskRun summarizes one run of a task.
type TaskRun struct {
	RunID     string    `json:"run_id"`
	Trigger   string    `json:"trigger"`
	Result    string    `json:"result"`
	ExitCode  int       `json:"exit_code"`
	StartedAt time.Time `json:"started_at"`
	Duration  float64   `json:"duration"` // seconds
}

// MarshalJSON encodes m like StateMessage, with "kind": "task" and last_run.
func (m TaskStateMessage) MarshalJSON() ([]byte, error) {
	since := ""
	if !m.Since.IsZero() {
		since = m.Since.UTC().Format(time.RFC3339)
	}
	return json.Marshal(struct {
		Kind     string   `json:"kind"`
		State    string   `json:"state"`
		Version  string   `json:"version"`
		Revision string   `json:"revision"`
		Since    string   `json:"since"`
		LastRun  *TaskRun `json:"last_run"`
		Run      string   `json:"run,omitempty"`
	}{"task", m.State, m.Version, m.Revision, since, m.LastRun, m.Run})
}

// PublishTaskState publishes the retained state of a task instance; like
// PublishState it never blocks, and Forget clears it.
func (p *Publisher) PublishTaskState(plug, instance string, m TaskStateMessage) {
	m.Run = p.cfg.RunID
	p.publishRetained(StateTopic(p.cfg.Host, plug, instance), m)
}
