package ui

import (
	"time"

	"github.com/plugs-dev/plugs/instance"
)

// The instances are the instance contract's types.
type (
	InstanceID     = instance.ID
	InstanceStatus = instance.Status
	Exit           = instance.Exit
)

// sensitive is what redacted values read (render.Sensitive; a test keeps
// them equal, without this package depending on the parser).
const sensitive = "(sensitive)"

// Status is what the dashboard shows of the daemon. Its fields are those of
// the local API's status (plugs status -o json), which the backend copies.
type Status struct {
	Daemon DaemonStatus
}

// DaemonStatus describes the daemon: see the API's daemon status.
type DaemonStatus struct {
	PID        int
	Started    time.Time
	ConfigFile string
	Mode       string // "file", "bundle" or "gitops"
	Repo       string // credentials removed
	// ConfigRevision is what runs: a git commit or a content hash.
	ConfigRevision string
	// LastReconcile is nil until the first reconcile ends.
	LastReconcile   *ReconcileStatus
	BrokerURL       string // credentials removed
	BrokerConnected bool
	BrokerError     string
	MetricsAddr     string
}

// ReconcileStatus is the outcome of one reconcile.
type ReconcileStatus struct {
	At       time.Time
	Duration time.Duration
	Revision string
	// Error is empty on success, else the rendered diagnostics or error text.
	Error string
}

// PlanReport is a plan as the API shows it: the instances that change.
type PlanReport struct {
	Revision string
	Changes  []Change
	Start    int
	Replace  int
	Stop     int
	Update   int
}

// Change is one instance a plan creates, replaces, updates or deletes.
type Change struct {
	Plug     string
	Instance string
	Action   string // "create", "replace", "update" or "delete"
	Reason   string
	// Diff holds the changed lines of the rendered config, secrets shown
	// as (sensitive).
	Diff []string
	// Error is set in an apply report when this change failed.
	Error string
}

// ApplyReport is what an apply did.
type ApplyReport struct {
	Plan     PlanReport
	Started  int
	Replaced int
	Stopped  int
	Updated  int
	Failed   int
}
