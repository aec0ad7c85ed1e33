package spec

import (
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// DefaultInstanceName is the name of the single instance a plug runs when it
// declares no instance blocks.
const DefaultInstanceName = "default"

// Deployment is a decoded plugs.hcl: what should run on one host.
type Deployment struct {
	// Filename is the path plugs.hcl was read from; BaseDir is its folder,
	// against which relative sources and file() paths resolve.
	Filename string
	BaseDir  string

	Host   string
	Broker *Broker // nil: the embedded broker on 127.0.0.1:1883
	Plugs  []*Plug // in declaration order

	Variables map[string]cty.Value

	// secrets are the lines Parser.Files blanks (see markSecrets);
	// variableRanges the default of each variable, paramVars the variables
	// each param's value refers to, by the param's range.
	secrets        *secretRanges
	variableRanges map[string]hcl.Range
	paramVars      map[hcl.Range][]string
}

// Plug returns the plug named name, or nil.
func (d *Deployment) Plug(name string) *Plug {
	for _, p := range d.Plugs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Broker is the MQTT broker block of plugs.hcl.
type Broker struct {
	URL      string
	Username string
	// Password is a secret: it must never be logged, planned, shown or published.
	Password  string
	DeclRange hcl.Range
}

// RestartPolicy is the restart block of a plug. A zero duration is one the
// plug does not set (plugs.hcl refuses 0s): the render fills the default,
// see WithDefaults.
type RestartPolicy struct {
	InitialDelay time.Duration // unset: 1s
	MaxDelay     time.Duration // unset: 1m
	ResetAfter   time.Duration // unset: 5m
	// MaxRestarts is the number of consecutive failed restarts after which the
	// instance is left failed; 0 means never give up (the default).
	MaxRestarts int
}

// DefaultRestartPolicy is the policy of a plug without a restart block.
var DefaultRestartPolicy = RestartPolicy{InitialDelay: time.Second, MaxDelay: time.Minute, ResetAfter: 5 * time.Minute}

// WithDefaults returns r with its unset durations set to the defaults.
func (r RestartPolicy) WithDefaults() RestartPolicy {
	if r.InitialDelay == 0 {
		r.InitialDelay = DefaultRestartPolicy.InitialDelay
	}
	if r.MaxDelay == 0 {
		r.MaxDelay = DefaultRestartPolicy.MaxDelay
	}
	if r.ResetAfter == 0 {
		r.ResetAfter = DefaultRestartPolicy.ResetAfter
	}
	return r
}

// DefaultStopTimeout is how long a stop waits after the stop signal before SIGKILL.
const DefaultStopTimeout = 10 * time.Second

// Plug is one plug block of plugs.hcl.
type Plug struct {
	Name    string
	Source  string // as written: git::URL[//subdir], ./path, ./file.zip
	Version string // as written: a constraint, a tag, a branch or a commit; "" for local sources

	// Params are the plug-level params; instance params are merged over them.
	Params      map[string]cty.Value
	ParamRanges map[string]hcl.Range

	Instances []*Instance // at least one: "default" when none are declared
	DependsOn []string
	// DependsOnRanges holds the range of each DependsOn entry.
	DependsOnRanges []hcl.Range
	Env             map[string]string
	// StopTimeout is zero when the plug does not set it (plugs.hcl refuses
	// 0s): the render fills DefaultStopTimeout.
	StopTimeout time.Duration
	// Restart holds what the restart block sets; zero fields are unset.
	Restart RestartPolicy
	Enabled bool

	// Plugin is an inline manifest (plugin {} block); nil when the plugin
	// ships its own plugin.hcl or plugin.json.
	Plugin *Manifest

	// Optional process isolation, applied by the runner.
	User, Group string
	Limits      Limits
	Sandbox     Sandbox // spec/sandbox.go

	// Health holds the plug's checks (overriding or adding to the
	// manifest's), check_restart and update blocks (spec/check.go).
	Health Health
	// Task makes the plug a task (task {} and schedule {} blocks,
	// spec/task.go); nil: a service, unless its manifest says task.
	Task *Task
	// Hooks is the plug's hooks {} block: each hook it sets replaces the
	// manifest's (an empty list turns it off); nil when absent.
	Hooks *Hooks

	// SourceRange and VersionRange locate the source and version
	// arguments (the plug's DeclRange when they are absent).
	SourceRange, VersionRange hcl.Range

	DeclRange hcl.Range
}

// Limits are optional resource limits of a plug's processes; zero means unset.
type Limits struct {
	NoFile     uint64 // RLIMIT_NOFILE
	AddrSpace  uint64 // RLIMIT_AS, bytes
	NProc      uint64 // RLIMIT_NPROC
	NoNewPrivs bool
	// cgroup limits (spec/sandbox.go)
	Memory uint64  // bytes
	CPU    float64 // CPUs
	PIDs   uint64
}

// Instance is one instance block of a plug (or the implicit "default").
type Instance struct {
	Name        string
	Params      map[string]cty.Value
	ParamRanges map[string]hcl.Range
	// Limits are the instance's own (its limits block over the plug's);
	// nil: the plug's. See Plug.InstanceLimits.
	Limits    *Limits
	DeclRange hcl.Range
}

// Plugin kinds.
const (
	KindScript   = "script"
	KindCompiled = "compiled"
)

// Manifest formats a Manifest was decoded from.
const (
	FormatHCL       = "plugin.hcl"
	FormatInline    = "inline"
	FormatMHealth   = "plugin.json (mhealth)"
	FormatMobileOps = "plugin.json (mobileops)"
)

// Manifest describes a plugin: how to build, run and configure it.
type Manifest struct {
	Name         string
	Version      string
	UUID         string
	Description  string
	Instructions string
	Kind         string   // KindScript or KindCompiled
	Command      []string // run from the plugin's directory
	Build        []string // run at build time only
	Setup        []string // the configuration program (plugs setup)
	// SetupRequired says the plugin must be configured with plugs setup
	// before its first run (mHealth "config requirement").
	SetupRequired bool
	Exports       string // data format, e.g. omh:heart-rate:2.0
	Params        []*ParamSpec
	StopSignal    string // e.g. SIGTERM
	Hooks         Hooks
	Permissions   []string
	Health        Health // checks and check_restart (spec/check.go)
	Task          *Task  // task {} and schedule {} blocks (spec/task.go); nil: a service

	// Shown by plugs status PLUG and the API; not used to run the plugin.
	Author      string // MobileOps author, plugin.hcl author
	License     string
	InstalledAt string // MobileOps installed_at, as the installer wrote it
	// Dependencies are pip requirement specifiers (MobileOps dependencies),
	// installed by plugs build into <tree>/.deps with requirements.txt.
	Dependencies []string
	// Compatibility are the versions the plugin needs, checked by Validate.
	Compatibility Compatibility

	Format    string // one of the Format constants
	Filename  string
	DeclRange hcl.Range
}

// Param returns the declared param named name, or nil.
func (m *Manifest) Param(name string) *ParamSpec {
	for _, p := range m.Params {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Compatibility is MobileOps "compatibility": version constraints on plugs
// itself (platform_version) and on the python3 that runs the plugin.
type Compatibility struct {
	PlatformVersion, PythonVersion           string
	PlatformVersionRange, PythonVersionRange hcl.Range
}

// Hooks are lifecycle commands (from the MobileOps shape or plugin.hcl).
type Hooks struct {
	PreStart  []string
	PostStart []string
	PreStop   []string
}

// ParamSpec is one declared param of a manifest.
type ParamSpec struct {
	Name        string
	Type        cty.Type // cty.String, cty.Number, cty.Bool, or a collection; cty.DynamicPseudoType for "any"
	Required    bool
	Secret      bool
	Default     cty.Value // cty.NilVal when there is none
	Description string
	DeclRange   hcl.Range
}

// Lock is a decoded plugs.lock.hcl.
type Lock struct {
	Filename string
	Plugs    map[string]*LockedPlug
}

// LockedPlug is one plug block of plugs.lock.hcl.
type LockedPlug struct {
	Name       string
	Source     string
	Constraint string // the version as written in plugs.hcl
	Version    string // the resolved tag or branch ("" for local sources)
	Revision   string // a git commit id, or a content hash for paths and archives
	Hash       string // h2: (or, in older locks, h1:) hash of the plugin tree (before build)
	// SHA256 is the sha256 (hex) of the archive of an https:// or http://
	// archive source: a download with other content is refused.
	SHA256    string
	DeclRange hcl.Range
}
