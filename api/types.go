package api

import (
	"errors"
	"time"
)

// Status is the answer of GET /v1/status: the daemon and every instance.
type Status struct {
	Daemon    DaemonStatus     `json:"daemon"`
	Instances []InstanceStatus `json:"instances"`
	// Plugins describes the plugin each running plug points at, from its
	// manifest (plugs status PLUG shows it).
	Plugins []PluginInfo `json:"plugins,omitempty"`
	// Rollouts is the rollout state of every plug with an update {} block
	// or a hold (issue 13, daemon/rollout.go), sorted by plug.
	Rollouts []RolloutStatus `json:"rollouts,omitempty"`
}

// Rollout states (RolloutStatus.State, HistoryEntry.Verdict).
const (
	RolloutProgressing = "rolling-out" // batches are being replaced and judged
	RolloutHealthy     = "healthy"     // the desired revision was judged healthy
	RolloutFailed      = "failed"      // a batch missed its healthy deadline; held as it was, not retried
	RolloutReverted    = "reverted"    // failed, and the plug runs its last healthy revision
	RolloutPinned      = "pinned"      // plugs rollback pinned a revision
	RolloutSuperseded  = "superseded"  // the desired state changed before a verdict
)

// RolloutStatus is one plug's rollout, as plugs status shows it.
type RolloutStatus struct {
	Plug  string `json:"plug"`
	State string `json:"state"`
	// Revision is the plug revision (a short id of what its instances
	// run: plugin revision and rendered configs) plugs.hcl asks for;
	// LastHealthy the last one judged healthy, what a failure reverts to.
	Revision    string `json:"revision"`
	LastHealthy string `json:"last_healthy,omitempty"`
	// Batch (1-based) of Batches, while rolling out; Batch 0 judges the
	// instances created at once.
	Batch   int       `json:"batch,omitempty"`
	Batches int       `json:"batches,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	// Reason says why it failed, was reverted or pinned, or that it
	// started over after a daemon restart.
	Reason string `json:"reason,omitempty"`
	// Override names the revision that runs instead of plugs.hcl's while
	// a hold applies (a revert, plugs rollback); "" none.
	Override string `json:"override,omitempty"`
	// OnTarget counts the instances on Revision, of Instances.
	OnTarget  int `json:"on_target"`
	Instances int `json:"instances"`
}

// History is GET /v1/history: a plug's revisions, newest first.
type History struct {
	Plug    string         `json:"plug"`
	Entries []HistoryEntry `json:"revisions"`
}

// HistoryEntry is one revision of a plug and its health verdict.
type HistoryEntry struct {
	ID       string `json:"id"`                 // the plug revision (plugs rollback --to takes it)
	Revision string `json:"revision,omitempty"` // the plugin revision (a commit, a content hash)
	Version  string `json:"version,omitempty"`
	// Verdict is rolling-out, healthy, failed or superseded.
	Verdict  string    `json:"verdict"`
	Reason   string    `json:"reason,omitempty"`
	Deployed time.Time `json:"deployed"`
	Judged   time.Time `json:"judged,omitzero"`
	// Runs: the plug runs this revision now; LastHealthy: the one a
	// failure reverts to; Restorable: plugs rollback can return to it.
	Runs        bool `json:"runs,omitempty"`
	LastHealthy bool `json:"last_healthy,omitempty"`
	Restorable  bool `json:"restorable,omitempty"`
}

// RollbackRequest is the body of POST /v1/rollback: pin the plug's last
// healthy revision, or To (a history id or plugin revision, a prefix).
type RollbackRequest struct {
	Plug string `json:"plug"`
	To   string `json:"to,omitempty"`
}

// RollbackReport says what plugs rollback pinned.
type RollbackReport struct {
	Plug     string `json:"plug"`
	To       string `json:"to"`
	Revision string `json:"revision,omitempty"`
	Replaced int    `json:"replaced"`
	// Until says when the pin ends.
	Until string `json:"until"`
}

// PlanRollout says how a plan's change of one plug rolls out.
type PlanRollout struct {
	Plug string `json:"plug"`
	// Replaces is how many instances are replaced in batches of
	// MaxParallel, each healthy for MinHealthyTime before the next, within
	// HealthyDeadline.
	Replaces        int           `json:"replaces"`
	MaxParallel     int           `json:"max_parallel"`
	MinHealthyTime  time.Duration `json:"min_healthy_time"`
	HealthyDeadline time.Duration `json:"healthy_deadline"`
	// RevertTo is the revision a failure reverts to (auto_revert); "" none.
	RevertTo   string `json:"revert_to,omitempty"`
	AutoRevert bool   `json:"auto_revert"`
	// Held says a hold keeps the plug off plugs.hcl's revision, and why.
	Held string `json:"held,omitempty"`
}

// PluginInfo is what a plugin's manifest says of itself.
type PluginInfo struct {
	Plug         string `json:"plug"`
	Name         string `json:"name,omitempty"`
	Version      string `json:"version,omitempty"`
	UUID         string `json:"uuid,omitempty"`
	Description  string `json:"description,omitempty"`
	Instructions string `json:"instructions,omitempty"`
	Author       string `json:"author,omitempty"`
	License      string `json:"license,omitempty"`
	Exports      string `json:"exports,omitempty"`
}

// DaemonStatus describes the daemon itself.
type DaemonStatus struct {
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
	ConfigFile string    `json:"config_file"`
	// Mode is "file", "bundle" or "gitops".
	Mode string `json:"mode"`
	// Repo is the GitOps repository URL with any credentials stripped.
	Repo string `json:"repo,omitempty"`
	// ConfigRevision is what runs: the git commit of the config repository,
	// or a content hash of plugs.hcl and its lock.
	ConfigRevision string `json:"config_revision"`
	// Reconciling is set while a reconcile runs: why, since when, and in
	// which step, so that a wedged one shows.
	Reconciling *Progress `json:"reconciling,omitempty"`
	// LastGood is, in GitOps mode, the last commit that reconciled (it
	// survives restarts, and runs when the head is broken at start).
	LastGood string `json:"last_good,omitempty"`
	// LastReconcile is nil until the first reconcile ends.
	LastReconcile   *ReconcileStatus `json:"last_reconcile,omitempty"`
	BrokerURL       string           `json:"broker_url,omitempty"`
	BrokerConnected bool             `json:"broker_connected"`
	// BrokerError is the last failure to connect to the broker (wrong
	// credentials, refused, unreachable), while not connected.
	BrokerError string `json:"broker_error,omitempty"`
	// Run names this run of the daemon, as the "run" field of every MQTT
	// state message and the plugs/<host>/run topic do.
	Run         string `json:"run,omitempty"`
	MetricsAddr string `json:"metrics_addr,omitempty"`
	UIAddr      string `json:"ui_addr,omitempty"` // the dashboard's; empty when it is off
	// APIAddr is where the remote task API (--api-addr) listens; empty
	// when it is off.
	APIAddr string `json:"api_addr,omitempty"`
	// TaskCallsMQTT says whether task calls over MQTT 5 are received now:
	// "subscribed to plugs/<host>/+/+/exec", or "not subscribed to …: why".
	// Empty while the deployment has no task.
	TaskCallsMQTT string `json:"task_calls_mqtt,omitempty"`
	// Sandbox says, one line per mechanism, what the sandbox enforces on
	// this host and what it cannot.
	Sandbox []string `json:"sandbox,omitempty"`
}

// Progress is a reconcile in progress.
type Progress struct {
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// Step is "poll", "load", "wait for a stable file", "plan" or "apply".
	Step string `json:"step"`
}

// ReconcileStatus is the outcome of the last reconcile.
type ReconcileStatus struct {
	At       time.Time     `json:"at"`
	Duration time.Duration `json:"duration"`
	// Revision is the config revision the reconcile read (for GitOps, the
	// commit; a failed commit is named here while the last good one runs).
	Revision string `json:"revision,omitempty"`
	// Error is empty on success, else one line saying what failed.
	Error string `json:"error,omitempty"`
	// Kind is the failure's kind: "input" (stalled until the input
	// changes) or "env" (retried).
	Kind Kind `json:"kind,omitempty"`
	// Diagnostics are the failure's diagnostics, when the input was wrong.
	Diagnostics []Diagnostic `json:"diagnostics,omitempty"`
}

// InstanceStatus is one row of plugs status.
type InstanceStatus struct {
	Plug      string    `json:"plug"`
	Instance  string    `json:"instance"`
	State     string    `json:"state"`
	PID       int       `json:"pid,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	Restarts  int       `json:"restarts"`
	Version   string    `json:"version,omitempty"`
	Revision  string    `json:"revision,omitempty"`
	LastExit  *Exit     `json:"last_exit,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	// Sandbox is what the instance's process may do, in one line.
	Sandbox string `json:"sandbox,omitempty"`

	// Health (daemon/health.go); nil for an instance the daemon has no
	// health for (not desired any more).
	Health *InstanceHealth `json:"health,omitempty"`
}

// InstanceHealth is an instance's health, as plugs status shows it.
type InstanceHealth struct {
	// Status is "pending" (running, not every check passed yet),
	// "healthy", "unhealthy", or "" (not running, or no checks).
	Status string `json:"status,omitempty"`
	// Ready: every check passed since the process started (at once without
	// checks); ReadyAt, when. HealthySince: when it last became healthy.
	Ready        bool      `json:"ready"`
	ReadyAt      time.Time `json:"ready_at,omitzero"`
	HealthySince time.Time `json:"healthy_since,omitzero"`
	// LastFailure is "check: output" of the last failed check, short.
	LastFailure  string    `json:"last_failure,omitempty"`
	NotifyStatus string    `json:"notify_status,omitempty"`
	LastData     time.Time `json:"last_data,omitzero"`
	// Restarts counts the restarts check_restart made.
	Restarts int           `json:"check_restarts,omitempty"`
	Checks   []CheckStatus `json:"checks,omitempty"`
}

// CheckStatus is one check of an instance.
type CheckStatus struct {
	Name                string    `json:"name"`
	Type                string    `json:"type"`
	Passing             bool      `json:"passing"`
	ConsecutiveFailures int       `json:"consecutive_failures,omitempty"`
	LastResult          time.Time `json:"last_result,omitzero"`
	Output              string    `json:"output,omitempty"`
}

// Exit is how an instance's last process ended.
type Exit struct {
	Code   int       `json:"code"`
	Signal string    `json:"signal,omitempty"`
	At     time.Time `json:"at"`
	// OOMKilled: killed at its cgroup memory limit ("oom-killed").
	OOMKilled bool `json:"oom_killed,omitempty"`
}

// Plan actions as shown by the API.
const (
	ActionCreate  = "create"
	ActionReplace = "replace"
	ActionUpdate  = "update" // stop or restart settings changed, applied in place
	ActionDelete  = "delete"
)

// PlanReport is a plan as the API shows it: only the instances that change,
// with their redacted config differences.
type PlanReport struct {
	// Revision is the config revision the plan was computed from.
	Revision string   `json:"revision,omitempty"`
	Changes  []Change `json:"changes"`
	Start    int      `json:"start"`
	Replace  int      `json:"replace"`
	Stop     int      `json:"stop"`
	Update   int      `json:"update"`
	// Rollouts says which plugs' changes roll out in batches (and what a
	// failure reverts to), and which are held (issue 13).
	Rollouts []PlanRollout `json:"rollouts,omitempty"`
}

// Empty reports whether the plan changes nothing.
func (p *PlanReport) Empty() bool { return len(p.Changes) == 0 }

// Change is one instance the plan creates, replaces or deletes.
type Change struct {
	Plug     string `json:"plug"`
	Instance string `json:"instance"`
	Action   string `json:"action"`
	Reason   string `json:"reason"`
	// Diff holds the changed lines of the rendered config ("- old", "+ new"),
	// secret values shown as (sensitive).
	Diff []string `json:"diff,omitempty"`
	// Error is set in an apply report when this change failed.
	Error string `json:"error,omitempty"`
	// Warning is set in an apply report on a start that went ahead
	// although a dependency was not ready ("dependency db not ready after
	// 1m0s"): not a failure.
	Warning string `json:"warning,omitempty"`
}

// ApplyReport is what an apply did.
type ApplyReport struct {
	Plan     PlanReport `json:"plan"`
	Started  int        `json:"started"`
	Replaced int        `json:"replaced"`
	Stopped  int        `json:"stopped"`
	Updated  int        `json:"updated"`
	Failed   int        `json:"failed"`
}

// PlanRequest is the body of POST /v1/plan. An empty File plans the
// daemon's own configuration; otherwise the given plugs.hcl (with Vars) is
// planned against what runs.
type PlanRequest struct {
	File string            `json:"file,omitempty"`
	Vars map[string]string `json:"vars,omitempty"`
}

// RestartRequest is the body of POST /v1/restart; an empty Instance
// restarts every instance of the plug.
type RestartRequest struct {
	Plug     string `json:"plug"`
	Instance string `json:"instance,omitempty"`
}

// SetupRequest asks the daemon to run a plug's setup program (POST
// /v1/setup?plug=&instance=): the request's body is the program's input,
// the answer's body its output as it comes, and the trailer SetupTrailer
// holds the *Error of a setup that failed (JSON), empty when it succeeded.
type SetupRequest struct {
	Plug     string `json:"plug"`
	Instance string `json:"instance,omitempty"`
}

// SetupTrailer is the trailer of /v1/setup's answer that says how the
// setup ended.
const SetupTrailer = "Plugs-Setup-Error"

// RestartReport names the instances restarted.
type RestartReport struct {
	Restarted []string `json:"restarted"`
}

// Kind says who must act on an error, and so how it is retried and which
// exit code it gives: Flux's "stalled" (an input error: nothing changes
// until a human fixes the input) vs "retrying" (the environment failed:
// the same reconcile may succeed later).
type Kind string

// The kinds of Error.
const (
	KindInput Kind = "input" // the configuration or the request is wrong: stalled until it changes
	KindEnv   Kind = "env"   // the environment failed (network, disk, a daemon): retried
)

// Stalled reports whether retrying cannot help until the input changes.
func (k Kind) Stalled() bool { return k == KindInput }

// ExitCode is the CLI's exit code for an error of kind k: 1 for input, 2
// for the environment (DESIGN's exit codes).
func (k Kind) ExitCode() int {
	if k == KindInput {
		return 1
	}
	return 2
}

// Error is an API error: a kind, a one-line message, and for a
// configuration error the diagnostics (as plugs validate -o json shows
// them), which the CLI renders with their source lines.
type Error struct {
	Kind        Kind         `json:"kind"`
	Message     string       `json:"error"`
	Diagnostics []Diagnostic `json:"diagnostics,omitempty"`

	cause error // ErrNotRunning, ErrPermission, a transport error; not sent
}

func (e *Error) Error() string { return e.Message }

// Unwrap is the error's cause, if it has one.
func (e *Error) Unwrap() error { return e.cause }

// KindOf is the kind of err: that of the *Error it wraps, else KindEnv.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) && e.Kind != "" {
		return e.Kind
	}
	return KindEnv
}
