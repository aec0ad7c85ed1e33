package ui

import (
	"context"
	"io"
)

// Backend is what the dashboard reads and asks; the daemon implements it
// with the methods behind its local API, tests fake it. Every method is
// safe for concurrent use.
type Backend interface {
	// Status is the daemon's own status (the instance rows are read
	// through Observe, which carries each instance's redacted config).
	Status() Status
	// Observe returns every instance the daemon runs. The dashboard reads
	// only Spec.Redacted of each spec, never Spec.Config.
	Observe() []InstanceStatus
	// Plan is what an apply would do now, without doing it.
	Plan(ctx context.Context) (*PlanReport, error)
	// Apply reconciles now.
	Apply(ctx context.Context) (*ApplyReport, error)
	// Restart restarts one instance without changing the desired state.
	Restart(ctx context.Context, id InstanceID) error
	// Logs writes the last n lines of an instance's output to w (none when
	// n is 0), then with follow what is appended, until ctx ends.
	Logs(ctx context.Context, w io.Writer, id InstanceID, n int, follow bool) error
	// Plugins lists the plugins of the running deployment, with their manifests.
	Plugins() []Plugin
}

// Controller is the imperative side of a backend: stop and start as an
// override of the desired state until the next apply, and kill (SIGKILL to
// the process group, then the restart policy applies). A backend without it
// gets no such buttons.
type Controller interface {
	Stop(ctx context.Context, id InstanceID) error
	Start(ctx context.Context, id InstanceID) error
	Kill(ctx context.Context, id InstanceID) error
	// Overrides names the instances stopped or started by hand since the
	// last apply, with what was done ("stopped", "started").
	Overrides() map[InstanceID]string
}

// SetupRunner runs a plug's configuration program (plugs setup) without a
// terminal, its output written to out.
type SetupRunner interface {
	Setup(ctx context.Context, id InstanceID, out io.Writer) error
}

// Plugin is one plug's plugin as the store holds it.
type Plugin struct {
	Plug     string
	Version  string
	Revision string
	Source   string // credentials are removed before it is shown

	Name          string
	Description   string
	Instructions  string
	Kind          string
	Exports       string
	Command       []string
	HasSetup      bool
	SetupRequired bool
	Params        []Param
}

// Param is a manifest's param declaration. Default is empty for secret
// params: their defaults are never shown.
type Param struct {
	Name        string
	Type        string
	Required    bool
	Secret      bool
	Default     string
	Description string
}
