package instance

import (
	"context"
	"time"
)

// ID names one instance of one plug.
type ID struct {
	Plug     string
	Instance string
}

func (id ID) String() string { return id.Plug + "/" + id.Instance }

// Spec is everything a runner needs to run one instance, and everything
// the planner compares to decide whether it must be replaced. It is plain
// data, rendered from plugs.hcl, the lock and the manifest with every
// default already filled: a consumer never substitutes a default of its own.
//
// Fields are grouped by concern; a feature that adds fields adds its own
// commented group at the end.
type Spec struct {
	// Identity and provenance.
	ID       ID
	UUID     string
	Version  string
	Revision string
	Source   string
	// Plugin is the manifest's own identity (the seed's instance file
	// holds it): written to instance.json and config.json, never a reason
	// to replace (config.json carries it, so a change shows there).
	Plugin PluginIdentity

	// The process.
	Dir     string            // working directory: the plugin's runnable tree
	Command []string          // argv; Command[0] is looked up relative to Dir when it contains a slash
	Env     map[string]string // the plug's env; the runner adds PLUGS_CONFIG, PLUGS_PLUG, PLUGS_INSTANCE

	// The rendered config.json.
	//
	// Config holds secrets: the runner writes it with mode 0600 and never
	// logs it. ConfigHash is its sha256, hex. Redacted is Config with secret
	// values replaced by "(sensitive)", for plans and logs.
	Config     []byte
	ConfigHash string
	Redacted   []byte

	// Lifecycle.
	DependsOn   []string // plug names this instance starts after
	StopSignal  string   // e.g. "SIGTERM"; "" means SIGTERM
	StopTimeout time.Duration
	Restart     RestartPolicy

	// Identity and limits of the process.
	User, Group string
	Limits      Limits

	// The sandbox (issue 15, package sandbox): what the instance may do.
	// Permissions are the manifest's, then the plug's sandbox block's;
	// Groups the supplementary groups it asks for; NoSandbox turns the
	// Landlock rules off (sandbox { enabled = false }); BrokerPort is the
	// TCP port of the MQTT broker it may always reach (0: none).
	Permissions []string
	Groups      []string
	NoSandbox   bool
	BrokerPort  int

	// Task (instance/task.go, package task): set when the plug runs on call
	// or on a schedule instead of being kept running; nil for a service.
	Task *Task

	// Hooks and setup (instance/hooks.go, package runner). Hooks are the
	// manifest's hooks, each replaced by the plug's when it sets one.
	// SetupRequired says the plugin must be configured with `plugs setup`
	// before it runs (mHealth "config requirement", MobileOps
	// "setup_required"): until runner.SetupDone, the instance stays in
	// StateNeedsSetup. Every instance gets PLUGS_SETUP_DIR, the plug's
	// setup folder in the state directory (runner.SetupDir).
	Hooks         Hooks
	SetupRequired bool

	// Rollout (reconcile/rollout.go; the daemon drives it): how a change
	// of the plug's instances rolls out, from its update {} block. nil:
	// every instance is replaced at once. The same for every instance of a
	// plug, and never a reason to replace.
	Update *Update
}

// Update is a plug's update {} block, with its defaults filled (Nomad's
// update stanza): replace at most MaxParallel instances at once; start the
// next batch once the previous one has been healthy for MinHealthyTime; a
// batch not so by HealthyDeadline fails the rollout, and AutoRevert then
// puts the plug back on its last healthy revision.
type Update struct {
	MaxParallel     int
	MinHealthyTime  time.Duration
	HealthyDeadline time.Duration
	AutoRevert      bool
}

// RestartPolicy mirrors spec.RestartPolicy so that runner need not import spec.
type RestartPolicy struct {
	InitialDelay time.Duration
	MaxDelay     time.Duration
	ResetAfter   time.Duration
	MaxRestarts  int // 0: never give up
}

// Limits mirrors spec.Limits.
type Limits struct {
	NoFile     uint64
	AddrSpace  uint64
	NProc      uint64
	NoNewPrivs bool
	// cgroup limits (issue 15)
	Memory uint64  // bytes
	CPU    float64 // CPUs
	PIDs   uint64
}

// State is the lifecycle state of an instance.
type State string

// The states of an instance, as exported in metrics and MQTT.
const (
	StateStarting State = "starting"
	StateRunning  State = "running"
	StateBackoff  State = "backoff"
	StateStopping State = "stopping"
	StateStopped  State = "stopped"
	StateFailed   State = "failed" // cannot be started at all, or gave up
)

// States lists every State, in lifecycle order.
var States = []State{StateNeedsSetup, StateStarting, StateRunning, StateBackoff, StateStopping, StateStopped, StateFailed}

// Exit describes how a process ended.
type Exit struct {
	Code   int    // exit code, -1 when killed by a signal
	Signal string // e.g. "SIGKILL", "" when it exited
	At     time.Time
	// OOMKilled: the kernel killed it at its cgroup memory limit
	// ("oom-killed" in status, metrics and MQTT).
	OOMKilled bool
}

// Status is the observed state of one instance.
type Status struct {
	ID        ID
	Spec      Spec // the spec it was started with (what Plan compares)
	State     State
	Reason    string // why it is in State
	Since     time.Time
	PID       int
	StartedAt time.Time // zero unless a process runs
	Restarts  int
	LastExit  *Exit
	// GaveUp is set on a failed instance that exhausted its restart policy
	// (max_restarts): the planner leaves it alone until its spec changes.
	// A failed instance without it could not be started at all (a missing
	// or non-executable command, a full disk, a refused tree) and is
	// started again by the next apply.
	GaveUp bool
}

// Executor runs instances. The runner implements it; tests may fake it.
// Every method is safe for concurrent use.
type Executor interface {
	// Start starts an instance that is not running. It returns once the
	// process is spawned (or could not be: the instance is then failed and
	// the error says why).
	Start(ctx context.Context, spec Spec) error
	// Stop stops an instance and forgets it: stop signal to its process
	// group, StopTimeout, then SIGKILL. Stopping an unknown instance is a no-op.
	Stop(ctx context.Context, id ID) error
	// Restart stops and starts an instance with its current spec.
	Restart(ctx context.Context, id ID) error
	// Observe returns the status of every instance the executor knows.
	Observe() []Status
}

// Updater is an optional extension of Executor: it applies settings that the
// process does not see (stop signal and timeout, restart policy, depends_on,
// metadata) to a running instance without restarting it. When the executor
// does not implement it, reconcile.Apply skips Update changes.
type Updater interface {
	Update(ctx context.Context, spec Spec) error
}

// ReadyWaiter tells when a started instance is ready to serve what
// depends on it. reconcile.Apply asks it before starting a plug's
// dependents (depends_on), the runner before post_start. The daemon
// implements it with the health checks: an instance is ready once every
// check has passed since its process started (a notify check's READY=1,
// the first pass of an exec, http, tcp or data check), like systemd's
// Type=notify; an instance without checks is ready once its process runs,
// like Type=simple.
type ReadyWaiter interface {
	// AwaitReady returns nil once id is ready, or an error saying why not
	// when ctx ends first or when it cannot become ready without a change
	// (it failed, or waits for plugs setup).
	AwaitReady(ctx context.Context, id ID) error
}

// PluginIdentity is how a plugin's manifest names itself.
type PluginIdentity struct {
	UUID        string // "" when the manifest declares none
	Name        string
	Version     string
	Description string
}
