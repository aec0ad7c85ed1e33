package reconcile

import (
	"bytes"
	"cmp"
	"maps"
	"slices"
	"strings"

	"github.com/plugs-dev/plugs/instance"
)

// Action is what applying a Change does to one instance.
type Action int

// The actions of a plan.
const (
	NoOp    Action = iota // unchanged: left running as it is
	Create                // start an instance that is not running
	Replace               // stop the running process and start the new spec
	Update                // apply stop or restart settings in place, same process
	Delete                // stop an instance that is no longer desired
)

// Symbol is the action's plan marker: "+", "-/+", "~", "-", or " ".
func (a Action) Symbol() string {
	switch a {
	case Create:
		return "+"
	case Replace:
		return "-/+"
	case Update:
		return "~"
	case Delete:
		return "-"
	}
	return " "
}

// String names the action: "create", "replace", "update", "delete", "no-op".
func (a Action) String() string {
	switch a {
	case Create:
		return "create"
	case Replace:
		return "replace"
	case Update:
		return "update"
	case Delete:
		return "delete"
	}
	return "no-op"
}

// MarshalText makes actions readable in JSON plans.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Reason explains a Change. It never decides one: the action is derived from
// which fields differ.
type Reason string

// The reasons of a change. Those marked (replace) change what the process
// sees and cause a Replace; (update) ones are applied in place.
const (
	ReasonInstanceAdded    Reason = "instance added"          // create
	ReasonNotRunning       Reason = "not running"             // create: observed stopped
	ReasonStartFailed      Reason = "failed"                  // create: it could not be started; see startFailed
	ReasonPlugRemoved      Reason = "plug removed"            // delete
	ReasonInstanceRemoved  Reason = "instance removed"        // delete
	ReasonConfigChanged    Reason = "config changed"          // replace
	ReasonRevisionChanged  Reason = "revision changed"        // replace
	ReasonCommandChanged   Reason = "command changed"         // replace
	ReasonEnvChanged       Reason = "env changed"             // replace
	ReasonDirChanged       Reason = "directory changed"       // replace
	ReasonUserChanged      Reason = "user or group changed"   // replace
	ReasonLimitsChanged    Reason = "limits changed"          // replace
	ReasonSandboxChanged   Reason = "sandbox changed"         // replace: permissions, groups, sandbox on/off
	ReasonHooksChanged     Reason = "hooks changed"           // replace: pre_start, post_start, pre_stop, or setup required
	ReasonStopChanged      Reason = "stop settings changed"   // update: stop signal or timeout
	ReasonRestartChanged   Reason = "restart policy changed"  // update
	ReasonDependsOnChanged Reason = "depends_on changed"      // update
	ReasonMetadataChanged  Reason = "version or uuid changed" // update: source, version, uuid alone
)

// String is the human phrase of the reason.
func (r Reason) String() string { return string(r) }

// DiffKind marks a line of a config diff.
type DiffKind byte

// The kinds of diff lines.
const (
	DiffRemoved DiffKind = '-'
	DiffAdded   DiffKind = '+'
)

// DiffLine is one changed line of an instance's redacted config.json.
type DiffLine struct {
	Kind DiffKind
	Text string
}

// String renders the line as "- text" or "+ text".
func (l DiffLine) String() string { return string(l.Kind) + " " + l.Text }

// Change is what a plan does to one instance, and why.
type Change struct {
	ID      instance.ID
	Action  Action
	Reasons []Reason
	// Before is the observed spec (nil for Create of a new instance); After
	// the desired one (nil for Delete).
	Before, After *instance.Spec
	// ConfigDiff holds the changed lines of the redacted config for a
	// Replace whose config changed; secret values show as (sensitive).
	ConfigDiff []DiffLine
}

// Plan is the difference between desired and observed state: one Change per
// instance, NoOp ones included, ordered by start order (depends_on levels),
// then plug, then instance.
type Plan struct {
	Changes []Change
}

// Empty reports whether applying p would do nothing.
func (p *Plan) Empty() bool {
	for _, c := range p.Changes {
		if c.Action != NoOp {
			return false
		}
	}
	return true
}

// Summary counts the instances p starts (Create), replaces and stops (Delete).
// In-place updates are counted by none of them.
func (p *Plan) Summary() (start, replace, stop int) {
	for _, c := range p.Changes {
		switch c.Action {
		case Create:
			start++
		case Replace:
			replace++
		case Delete:
			stop++
		}
	}
	return start, replace, stop
}

// NewPlan compares desired with observed. It is a pure function: same inputs,
// same plan. An observed instance whose spec equals the desired one is left
// alone whatever its state (a failed or backing-off instance is the
// runner's business, not a reason to replace it), except a stopped one,
// which is created again. Duplicated IDs in desired keep the first.
func NewPlan(desired []instance.Spec, observed []instance.Status) *Plan {
	want := make(map[instance.ID]*instance.Spec, len(desired))
	wantPlugs := make(map[string]bool)
	for i := range desired {
		if _, dup := want[desired[i].ID]; !dup {
			want[desired[i].ID] = &desired[i]
			wantPlugs[desired[i].ID.Plug] = true
		}
	}
	have := make(map[instance.ID]*instance.Status, len(observed))
	for i := range observed {
		have[observed[i].ID] = &observed[i]
	}

	changes := make([]Change, 0, len(want)+len(have))
	for id, after := range want {
		st, ok := have[id]
		switch {
		case !ok:
			changes = append(changes, Change{ID: id, Action: Create, Reasons: []Reason{ReasonInstanceAdded}, After: after})
		case st.State == instance.StateStopped:
			before := st.Spec
			changes = append(changes, Change{ID: id, Action: Create, Reasons: []Reason{ReasonNotRunning}, Before: &before, After: after})
		default:
			before := st.Spec
			c := compare(&before, after)
			if c.Action == NoOp && st.State == instance.StateFailed && st.PID == 0 && !st.GaveUp {
				// It could not be started (not a crash loop that gave
				// up): an apply tries again, and the plan says why.
				c.Action, c.Reasons = Create, []Reason{startFailed(st.Reason)}
			}
			changes = append(changes, c)
		}
	}
	for id, st := range have {
		if _, ok := want[id]; ok {
			continue
		}
		reason := ReasonInstanceRemoved
		if !wantPlugs[id.Plug] {
			reason = ReasonPlugRemoved
		}
		before := st.Spec
		changes = append(changes, Change{ID: id, Action: Delete, Reasons: []Reason{reason}, Before: &before})
	}

	level := levels(changes)
	slices.SortFunc(changes, func(a, b Change) int {
		return cmp.Or(
			cmp.Compare(level[a.ID.Plug], level[b.ID.Plug]),
			cmp.Compare(a.ID.Plug, b.ID.Plug),
			cmp.Compare(a.ID.Instance, b.ID.Instance),
		)
	})
	return &Plan{Changes: changes}
}

// compare builds the change from a running spec to a desired one.
func compare(before, after *instance.Spec) Change {
	c := Change{ID: after.ID, Before: before, After: after}
	var replace, update []Reason
	if before.ConfigHash != after.ConfigHash || !bytes.Equal(before.Config, after.Config) {
		replace = append(replace, ReasonConfigChanged)
		c.ConfigDiff = configDiff(before, after)
	}
	if before.Revision != after.Revision {
		replace = append(replace, ReasonRevisionChanged)
	}
	if !slices.Equal(before.Command, after.Command) {
		replace = append(replace, ReasonCommandChanged)
	}
	if !maps.Equal(before.Env, after.Env) {
		replace = append(replace, ReasonEnvChanged)
	}
	if before.Dir != after.Dir {
		replace = append(replace, ReasonDirChanged)
	}
	if before.User != after.User || before.Group != after.Group {
		replace = append(replace, ReasonUserChanged)
	}
	if before.Limits != after.Limits {
		replace = append(replace, ReasonLimitsChanged)
	}
	if !slices.Equal(before.Permissions, after.Permissions) || !slices.Equal(before.Groups, after.Groups) || before.NoSandbox != after.NoSandbox {
		replace = append(replace, ReasonSandboxChanged)
	}
	if !before.Hooks.Equal(after.Hooks) || before.SetupRequired != after.SetupRequired {
		replace = append(replace, ReasonHooksChanged)
	}
	if before.StopSignal != after.StopSignal || before.StopTimeout != after.StopTimeout {
		update = append(update, ReasonStopChanged)
	}
	if before.Restart != after.Restart {
		update = append(update, ReasonRestartChanged)
	}
	if !slices.Equal(before.DependsOn, after.DependsOn) {
		update = append(update, ReasonDependsOnChanged)
	}
	// Version and UUID are part of Config in rendered specs; Redacted follows
	// Config there too. They are compared for hand-made specs.
	metadata := before.Source != after.Source || before.Version != after.Version || before.UUID != after.UUID
	if metadata || (len(replace) == 0 && !bytes.Equal(before.Redacted, after.Redacted)) {
		update = append(update, ReasonMetadataChanged)
	}
	switch {
	case len(replace) > 0:
		c.Action = Replace
	case len(update) > 0:
		c.Action = Update
	}
	c.Reasons = append(replace, update...)
	return c
}

// levels gives every plug of changes its depends_on level
// (instance.Levels), with the dependencies of After (desired) and Before
// (observed) specs alike.
func levels(changes []Change) map[string]int {
	deps := make(map[string][]string)
	for _, c := range changes {
		if _, ok := deps[c.ID.Plug]; !ok {
			deps[c.ID.Plug] = nil
		}
		for _, s := range []*instance.Spec{c.Before, c.After} {
			if s != nil {
				deps[c.ID.Plug] = append(deps[c.ID.Plug], s.DependsOn...)
			}
		}
	}
	return instance.Levels(deps)
}

// startFailed is the reason of a Create that retries an instance that could
// not be started: "failed: <why>", the why cut to one short line.
func startFailed(why string) Reason {
	why, _, _ = strings.Cut(why, "\n")
	if len(why) > 200 {
		why = why[:200] + "…"
	}
	if why == "" {
		return ReasonStartFailed
	}
	return ReasonStartFailed + Reason(": "+why)
}
