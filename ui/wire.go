package ui

import (
	"github.com/plugs-dev/plugs/daemon"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/render"
)

// The types the dashboard shows are the local API's wire types and the
// instance contract, so that the page and the CLI show the same thing.
// (The API's types still live in daemon; they move to package api.)
type (
	Status          = daemon.Status
	DaemonStatus    = daemon.DaemonStatus
	ReconcileStatus = daemon.ReconcileStatus
	PlanReport      = daemon.PlanReport
	ApplyReport     = daemon.ApplyReport
	Change          = daemon.Change
	APIError        = daemon.Error

	InstanceID     = instance.ID
	InstanceStatus = instance.Status
	InstanceState  = instance.State
	Exit           = instance.Exit
)

// sensitive is what redacted values read.
const sensitive = render.Sensitive
