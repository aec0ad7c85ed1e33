package reconcile_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/reconcile/reconciletest"
)

// testSpec is a test spec of plug/instance at version 1 in /srv.
func testSpec(plug, instance string, dependsOn ...string) reconcile.InstanceSpec {
	return reconciletest.Spec("/srv", plug, instance, "1", dependsOn...)
}

func running(s reconcile.InstanceSpec) reconcile.InstanceStatus {
	return reconcile.InstanceStatus{ID: s.ID, Spec: s, State: reconcile.StateRunning, PID: 42}
}

func withState(st reconcile.InstanceStatus, state reconcile.State) reconcile.InstanceStatus {
	st.State = state
	return st
}

// withConfig gives s a new rendered config (and redacted form).
func withConfig(s reconcile.InstanceSpec, config, redacted string) reconcile.InstanceSpec {
	s.Config, s.Redacted = []byte(config), []byte(redacted)
	sum := sha256.Sum256(s.Config)
	s.ConfigHash = hex.EncodeToString(sum[:])
	return s
}

// summary is the comparable gist of a change.
type summary struct {
	ID      string
	Action  string
	Reasons []reconcile.Reason
	Diff    []string
}

func summarize(p *reconcile.Plan) []summary {
	var out []summary
	for _, c := range p.Changes {
		s := summary{ID: c.ID.String(), Action: c.Action.Symbol(), Reasons: c.Reasons}
		for _, l := range c.ConfigDiff {
			s.Diff = append(s.Diff, l.String())
		}
		out = append(out, s)
	}
	return out
}

func TestPlanReasons(t *testing.T) {
	a := testSpec("a", "default")
	mod := func(f func(s *reconcile.InstanceSpec)) reconcile.InstanceSpec {
		s := testSpec("a", "default")
		s.Env = map[string]string{"PLUGS_TEST": "1"}
		f(&s)
		return s
	}
	oneChange := func(action string, reasons ...reconcile.Reason) []summary {
		return []summary{{ID: "a/default", Action: action, Reasons: reasons}}
	}
	tests := []struct {
		name     string
		desired  []reconcile.InstanceSpec
		observed []reconcile.InstanceStatus
		want     []summary
	}{
		{name: "nothing", want: nil},
		{name: "unchanged", desired: []reconcile.InstanceSpec{a}, observed: []reconcile.InstanceStatus{running(a)},
			want: oneChange(" ")},
		{name: "instance added", desired: []reconcile.InstanceSpec{a},
			want: oneChange("+", reconcile.ReasonInstanceAdded)},
		{name: "observed stopped is created", desired: []reconcile.InstanceSpec{a},
			observed: []reconcile.InstanceStatus{withState(running(a), reconcile.StateStopped)},
			want:     oneChange("+", reconcile.ReasonNotRunning)},
		{name: "failed with the same spec is left alone", desired: []reconcile.InstanceSpec{a},
			observed: []reconcile.InstanceStatus{withState(running(a), reconcile.StateFailed)},
			want:     oneChange(" ")},
		{name: "backoff with the same spec is left alone", desired: []reconcile.InstanceSpec{a},
			observed: []reconcile.InstanceStatus{withState(running(a), reconcile.StateBackoff)},
			want:     oneChange(" ")},
		{name: "plug removed", observed: []reconcile.InstanceStatus{running(a)},
			want: oneChange("-", reconcile.ReasonPlugRemoved)},
		{name: "instance removed", desired: []reconcile.InstanceSpec{testSpec("a", "p1")},
			observed: []reconcile.InstanceStatus{running(testSpec("a", "p1")), running(a)},
			want: []summary{
				{ID: "a/default", Action: "-", Reasons: []reconcile.Reason{reconcile.ReasonInstanceRemoved}},
				{ID: "a/p1", Action: " "},
			}},
		{name: "config changed",
			desired: []reconcile.InstanceSpec{withConfig(a, "{\n  \"token\": \"old\",\n  \"n\": 2\n}\n", "{\n  \"token\": \"(sensitive)\",\n  \"n\": 2\n}\n")},
			observed: []reconcile.InstanceStatus{running(withConfig(a, "{\n  \"token\": \"old\",\n  \"n\": 1\n}\n",
				"{\n  \"token\": \"(sensitive)\",\n  \"n\": 1\n}\n"))},
			want: []summary{{ID: "a/default", Action: "-/+", Reasons: []reconcile.Reason{reconcile.ReasonConfigChanged},
				Diff: []string{`-   "n": 1`, `+   "n": 2`}}}},
		{name: "secret-only change shows its line, redacted", desired: []reconcile.InstanceSpec{withConfig(a, `{"token": "new"}`, `{"token": "(sensitive)"}`)},
			observed: []reconcile.InstanceStatus{running(withConfig(a, `{"token": "old"}`, `{"token": "(sensitive)"}`))},
			want: []summary{{ID: "a/default", Action: "-/+", Reasons: []reconcile.Reason{reconcile.ReasonConfigChanged},
				Diff: []string{`- {"token": "(sensitive)"}`, `+ {"token": "(sensitive)"}`}}}},
		{name: "revision changed", desired: []reconcile.InstanceSpec{mod(func(s *reconcile.InstanceSpec) { s.Revision = "r2" })},
			observed: []reconcile.InstanceStatus{running(a)}, want: oneChange("-/+", reconcile.ReasonRevisionChanged)},
		{name: "command changed", desired: []reconcile.InstanceSpec{mod(func(s *reconcile.InstanceSpec) { s.Command = []string{"sleep", "61"} })},
			observed: []reconcile.InstanceStatus{running(a)}, want: oneChange("-/+", reconcile.ReasonCommandChanged)},
		{name: "env changed", desired: []reconcile.InstanceSpec{mod(func(s *reconcile.InstanceSpec) { s.Env = map[string]string{"X": "1"} })},
			observed: []reconcile.InstanceStatus{running(a)}, want: oneChange("-/+", reconcile.ReasonEnvChanged)},
		{name: "dir changed", desired: []reconcile.InstanceSpec{mod(func(s *reconcile.InstanceSpec) { s.Dir = "/srv2" })},
			observed: []reconcile.InstanceStatus{running(a)}, want: oneChange("-/+", reconcile.ReasonDirChanged)},
		{name: "user changed", desired: []reconcile.InstanceSpec{mod(func(s *reconcile.InstanceSpec) { s.Group = "dialout" })},
			observed: []reconcile.InstanceStatus{running(a)}, want: oneChange("-/+", reconcile.ReasonUserChanged)},
		{name: "limits changed", desired: []reconcile.InstanceSpec{mod(func(s *reconcile.InstanceSpec) { s.Limits.NoFile = 1024 })},
			observed: []reconcile.InstanceStatus{running(a)}, want: oneChange("-/+", reconcile.ReasonLimitsChanged)},
		{name: "stop timeout changed", desired: []reconcile.InstanceSpec{mod(func(s *reconcile.InstanceSpec) { s.StopTimeout = time.Minute })},
			observed: []reconcile.InstanceStatus{running(a)}, want: oneChange("~", reconcile.ReasonStopChanged)},
		{name: "stop signal changed", desired: []reconcile.InstanceSpec{mod(func(s *reconcile.InstanceSpec) { s.StopSignal = "SIGINT" })},
			observed: []reconcile.InstanceStatus{running(a)}, want: oneChange("~", reconcile.ReasonStopChanged)},
		{name: "restart policy changed", desired: []reconcile.InstanceSpec{mod(func(s *reconcile.InstanceSpec) { s.Restart.MaxRestarts = 5 })},
			observed: []reconcile.InstanceStatus{running(a)}, want: oneChange("~", reconcile.ReasonRestartChanged)},
		{name: "depends_on changed", desired: []reconcile.InstanceSpec{mod(func(s *reconcile.InstanceSpec) { s.DependsOn = []string{"b"} })},
			observed: []reconcile.InstanceStatus{running(a)}, want: oneChange("~", reconcile.ReasonDependsOnChanged)},
		{name: "source changed alone", desired: []reconcile.InstanceSpec{mod(func(s *reconcile.InstanceSpec) { s.Source = "./other" })},
			observed: []reconcile.InstanceStatus{running(a)}, want: oneChange("~", reconcile.ReasonMetadataChanged)},
		{name: "replace reasons come first, update reasons kept",
			desired: []reconcile.InstanceSpec{mod(func(s *reconcile.InstanceSpec) {
				s.Revision, s.Env, s.StopTimeout = "r2", map[string]string{}, time.Minute
			})},
			observed: []reconcile.InstanceStatus{running(a)},
			want:     oneChange("-/+", reconcile.ReasonRevisionChanged, reconcile.ReasonEnvChanged, reconcile.ReasonStopChanged)},
		{name: "order follows depends_on, then names",
			desired: []reconcile.InstanceSpec{testSpec("z", "default"), testSpec("b", "x", "c"), testSpec("b", "a", "c"), testSpec("c", "default", "z"), testSpec("a", "default")},
			want: []summary{
				{ID: "a/default", Action: "+", Reasons: []reconcile.Reason{reconcile.ReasonInstanceAdded}},
				{ID: "z/default", Action: "+", Reasons: []reconcile.Reason{reconcile.ReasonInstanceAdded}},
				{ID: "c/default", Action: "+", Reasons: []reconcile.Reason{reconcile.ReasonInstanceAdded}},
				{ID: "b/a", Action: "+", Reasons: []reconcile.Reason{reconcile.ReasonInstanceAdded}},
				{ID: "b/x", Action: "+", Reasons: []reconcile.Reason{reconcile.ReasonInstanceAdded}},
			}},
		{name: "a cycle still gives a deterministic order",
			desired: []reconcile.InstanceSpec{testSpec("b", "default", "a"), testSpec("a", "default", "b"), testSpec("c", "default")},
			want: []summary{
				{ID: "c/default", Action: "+", Reasons: []reconcile.Reason{reconcile.ReasonInstanceAdded}},
				{ID: "a/default", Action: "+", Reasons: []reconcile.Reason{reconcile.ReasonInstanceAdded}},
				{ID: "b/default", Action: "+", Reasons: []reconcile.Reason{reconcile.ReasonInstanceAdded}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := reconcile.NewPlan(tt.desired, tt.observed)
			if diff := cmp.Diff(tt.want, summarize(p)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			wantEmpty := true
			for _, s := range tt.want {
				wantEmpty = wantEmpty && s.Action == " "
			}
			if p.Empty() != wantEmpty {
				t.Errorf("Empty() = %v, want %v", p.Empty(), wantEmpty)
			}
		})
	}
}

func TestPlanSummaryAndStrings(t *testing.T) {
	a, b, c, d := testSpec("a", "default"), testSpec("b", "default"), testSpec("c", "default"), testSpec("d", "default")
	b2 := b
	b2.Revision = "r2"
	d2 := d
	d2.StopTimeout = time.Hour
	p := reconcile.NewPlan([]reconcile.InstanceSpec{a, b2, d2}, []reconcile.InstanceStatus{running(b), running(c), running(d)})
	start, replace, stop := p.Summary()
	if start != 1 || replace != 1 || stop != 1 {
		t.Errorf("Summary() = %d, %d, %d; want 1, 1, 1", start, replace, stop)
	}
	var got []string
	for _, ch := range p.Changes {
		got = append(got, ch.Action.Symbol()+" "+ch.Action.String()+" "+ch.ID.String())
	}
	want := []string{"+ create a/default", "-/+ replace b/default", "- delete c/default", "~ update d/default"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	if reconcile.ReasonConfigChanged.String() != "config changed" {
		t.Errorf("ReasonConfigChanged = %q", reconcile.ReasonConfigChanged)
	}
}
