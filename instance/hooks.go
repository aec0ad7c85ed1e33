package instance

import (
	"context"
	"slices"
	"time"
)

// Hooks are an instance's lifecycle commands, run with systemd's
// ExecStartPre / ExecStartPost / ExecStop semantics (package runner): in
// the plugin's directory, with the instance's environment and PLUGS_CONFIG,
// output into the instance's log. Each is an argv; nil means none.
type Hooks struct {
	// PreStart runs before every start of the process; a failure is a
	// failed start ("pre_start exited 3"), retried with backoff.
	PreStart []string
	// PostStart runs once the process is up; a failure stops it, as a
	// failed start.
	PostStart []string
	// PreStop runs before the stop signal of a requested stop (not after a
	// crash), bounded by the stop timeout.
	PreStop []string
	// Timeout bounds PreStart and PostStart each; the render fills
	// DefaultHookTimeout.
	Timeout time.Duration
}

// DefaultHookTimeout bounds a pre_start or post_start hook (systemd's
// TimeoutStartSec is 90s; a plugin's hook is a script, not a boot).
const DefaultHookTimeout = time.Minute

// Equal reports whether h and o run the same commands with the same timeout.
func (h Hooks) Equal(o Hooks) bool {
	return slices.Equal(h.PreStart, o.PreStart) && slices.Equal(h.PostStart, o.PostStart) &&
		slices.Equal(h.PreStop, o.PreStop) && h.Timeout == o.Timeout
}

// StateNeedsSetup is the state of an instance whose plugin must be
// configured with `plugs setup PLUG` (Spec.SetupRequired) and has not been:
// it is not started until then.
const StateNeedsSetup State = "needs-setup"

// Remover is an optional extension of Executor: Remove stops an instance
// and deletes its files (config.json, which holds secrets, its log and
// state), for an instance deleted from the deployment. reconcile.Apply
// calls it for deletes when the executor implements it, and Stop
// otherwise; replaces and daemon stops keep the files.
type Remover interface {
	Remove(ctx context.Context, id ID) error
}
