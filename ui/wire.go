package ui

import (
	"github.com/plugs-dev/plugs/daemon"
	"github.com/plugs-dev/plugs/reconcile"
)

// The types the dashboard shows are the local API's wire types and the
// instance contract, so that the page and the CLI show the same thing.
type (
	Status          = daemon.Status
	DaemonStatus    = daemon.DaemonStatus
	ReconcileStatus = daemon.ReconcileStatus
	PlanReport      = daemon.PlanReport
	ApplyReport     = daemon.ApplyReport
	Change          = daemon.Change
	APIError        = daemon.Error

	InstanceID     = reconcile.InstanceID
	InstanceStatus = reconcile.InstanceStatus
	InstanceState  = reconcile.State
	Exit           = reconcile.Exit
)

// sensitive is what redacted values read.
const sensitive = reconcile.Sensitive
