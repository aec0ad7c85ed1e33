package reconcile_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/reconcile/reconciletest"
)

// testSpec is a test spec of plug/instance at version 1 in /srv.
func testSpec(plug, instance string, dependsOn ...string) instance.Spec {
	return reconciletest.Spec("/srv", plug, instance, "1", dependsOn...)
}

func running(s instance.Spec) instance.Status {
	return instance.Status{ID: s.ID, Spec: s, State: instance.StateRunning, PID: 42}
}

func withState(st instance.Status, state instance.State) instance.Status {
	st.State = state
	return st
}

// withConfig gives s a new rendered config (and redacted form).
func withConfig(s instance.Spec, config, redacted string) instance.Spec {
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
	mod := func(f func(s *instance.Spec)) instance.Spec {
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
		desired  []instance.Spec
		observed []instance.Status
		want     []summary
	}{
		{name: "nothing", want: nil},
		{name: "unchanged", desired: []instance.Spec{a}, observed: []instance.Status{running(a)},
			want: oneChange(" ")},
		{name: "instance added", desired: []instance.Spec{a},
			want: oneChange("+", reconcile.ReasonInstanceAdded)},
		{name: "observed stopped is created", desired: []instance.Spec{a},
			observed: []instance.Status{withState(running(a), instance.StateStopped)},
			want:     oneChange("+", reconcile.ReasonNotRunning)},
		{name: "failed with the same spec is left alone", desired: []instance.Spec{a},
			observed: []instance.Status{withState(running(a), instance.StateFailed)},
			want:     oneChange(" ")},
		{name: "backoff with the same spec is left alone", desired: []instance.Spec{a},
			observed: []instance.Status{withState(running(a), instance.StateBackoff)},
			want:     oneChange(" ")},
		{name: "plug removed", observed: []instance.Status{running(a)},
			want: oneChange("-", reconcile.ReasonPlugRemoved)},
		{name: "instance removed", desired: []instance.Spec{testSpec("a", "p1")},
			observed: []instance.Status{running(testSpec("a", "p1")), running(a)},
			want: []summary{
				{ID: "a/default", Action: "-", Reasons: []reconcile.Reason{reconcile.ReasonInstanceRemoved}},
				{ID: "a/p1", Action: " "},
			}},
		{name: "config changed",
			desired: []instance.Spec{withConfig(a, "{\n  \"token\": \"old\",\n  \"n\": 2\n}\n", "{\n  \"token\": \"(sensitive)\",\n  \"n\": 2\n}\n")},
			observed: []instance.Status{running(withConfig(a, "{\n  \"token\": \"old\",\n  \"n\": 1\n}\n",
				"{\n  \"token\": \"(sensitive)\",\n  \"n\": 1\n}\n"))},
			want: []summary{{ID: "a/default", Action: "-/+", Reasons: []reconcile.Reason{reconcile.ReasonConfigChanged},
				Diff: []string{`-   "n": 1`, `+   "n": 2`}}}},
		{name: "secret-only change shows its line, redacted", desired: []instance.Spec{withConfig(a, `{"token": "new"}`, `{"token": "(sensitive)"}`)},
			observed: []instance.Status{running(withConfig(a, `{"token": "old"}`, `{"token": "(sensitive)"}`))},
			want: []summary{{ID: "a/default", Action: "-/+", Reasons: []reconcile.Reason{reconcile.ReasonConfigChanged},
				Diff: []string{`- {"token": "(sensitive)"}`, `+ {"token": "(sensitive)"}`}}}},
		{name: "revision changed", desired: []instance.Spec{mod(func(s *instance.Spec) { s.Revision = "r2" })},
			observed: []instance.Status{running(a)}, want: oneChange("-/+", reconcile.ReasonRevisionChanged)},
		{name: "command changed", desired: []instance.Spec{mod(func(s *instance.Spec) { s.Command = []string{"sleep", "61"} })},
			observed: []instance.Status{running(a)}, want: oneChange("-/+", reconcile.ReasonCommandChanged)},
		{name: "env changed", desired: []instance.Spec{mod(func(s *instance.Spec) { s.Env = map[string]string{"X": "1"} })},
			observed: []instance.Status{running(a)}, want: oneChange("-/+", reconcile.ReasonEnvChanged)},
		{name: "dir changed", desired: []instance.Spec{mod(func(s *instance.Spec) { s.Dir = "/srv2" })},
			observed: []instance.Status{running(a)}, want: oneChange("-/+", reconcile.ReasonDirChanged)},
		{name: "user changed", desired: []instance.Spec{mod(func(s *instance.Spec) { s.Group = "dialout" })},
			observed: []instance.Status{running(a)}, want: oneChange("-/+", reconcile.ReasonUserChanged)},
		{name: "limits changed", desired: []instance.Spec{mod(func(s *instance.Spec) { s.Limits.NoFile = 1024 })},
			observed: []instance.Status{running(a)}, want: oneChange("-/+", reconcile.ReasonLimitsChanged)},
		{name: "memory limit changed", desired: []instance.Spec{mod(func(s *instance.Spec) { s.Limits.Memory = 1 << 28 })},
			observed: []instance.Status{running(a)}, want: oneChange("-/+", reconcile.ReasonLimitsChanged)},
		{name: "permissions changed", desired: []instance.Spec{mod(func(s *instance.Spec) { s.Permissions = []string{"network.http"} })},
			observed: []instance.Status{running(a)}, want: oneChange("-/+", reconcile.ReasonSandboxChanged)},
		{name: "stop timeout changed", desired: []instance.Spec{mod(func(s *instance.Spec) { s.StopTimeout = time.Minute })},
			observed: []instance.Status{running(a)}, want: oneChange("~", reconcile.ReasonStopChanged)},
		{name: "stop signal changed", desired: []instance.Spec{mod(func(s *instance.Spec) { s.StopSignal = "SIGINT" })},
			observed: []instance.Status{running(a)}, want: oneChange("~", reconcile.ReasonStopChanged)},
		{name: "restart policy changed", desired: []instance.Spec{mod(func(s *instance.Spec) { s.Restart.MaxRestarts = 5 })},
			observed: []instance.Status{running(a)}, want: oneChange("~", reconcile.ReasonRestartChanged)},
		{name: "depends_on changed", desired: []instance.Spec{mod(func(s *instance.Spec) { s.DependsOn = []string{"b"} })},
			observed: []instance.Status{running(a)}, want: oneChange("~", reconcile.ReasonDependsOnChanged)},
		{name: "source changed alone", desired: []instance.Spec{mod(func(s *instance.Spec) { s.Source = "./other" })},
			observed: []instance.Status{running(a)}, want: oneChange("~", reconcile.ReasonMetadataChanged)},
		{name: "replace reasons come first, update reasons kept",
			desired: []instance.Spec{mod(func(s *instance.Spec) {
				s.Revision, s.Env, s.StopTimeout = "r2", map[string]string{}, time.Minute
			})},
			observed: []instance.Status{running(a)},
			want:     oneChange("-/+", reconcile.ReasonRevisionChanged, reconcile.ReasonEnvChanged, reconcile.ReasonStopChanged)},
		{name: "order follows depends_on, then names",
			desired: []instance.Spec{testSpec("z", "default"), testSpec("b", "x", "c"), testSpec("b", "a", "c"), testSpec("c", "default", "z"), testSpec("a", "default")},
			want: []summary{
				{ID: "a/default", Action: "+", Reasons: []reconcile.Reason{reconcile.ReasonInstanceAdded}},
				{ID: "z/default", Action: "+", Reasons: []reconcile.Reason{reconcile.ReasonInstanceAdded}},
				{ID: "c/default", Action: "+", Reasons: []reconcile.Reason{reconcile.ReasonInstanceAdded}},
				{ID: "b/a", Action: "+", Reasons: []reconcile.Reason{reconcile.ReasonInstanceAdded}},
				{ID: "b/x", Action: "+", Reasons: []reconcile.Reason{reconcile.ReasonInstanceAdded}},
			}},
		{name: "a cycle still gives a deterministic order",
			desired: []instance.Spec{testSpec("b", "default", "a"), testSpec("a", "default", "b"), testSpec("c", "default")},
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
	p := reconcile.NewPlan([]instance.Spec{a, b2, d2}, []instance.Status{running(b), running(c), running(d)})
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
