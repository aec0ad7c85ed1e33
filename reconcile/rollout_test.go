package reconcile_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile"
)

var policy = &instance.Update{MaxParallel: 2, MinHealthyTime: 10 * time.Second, HealthyDeadline: time.Minute, AutoRevert: true}

// webSpecs are n instances of plug web at version, with the policy.
func webSpecs(version string, n int) []instance.Spec {
	var out []instance.Spec
	for i := range n {
		s := testSpec("web", string(rune('a'+i)))
		s = withVersion(s, version)
		s.Update = policy
		out = append(out, s)
	}
	return out
}

func withVersion(s instance.Spec, version string) instance.Spec {
	s.Version, s.Revision = version, "rev-"+version
	return s
}

func runningAll(specs []instance.Spec) []instance.Status {
	var out []instance.Status
	for _, s := range specs {
		out = append(out, running(s))
	}
	return out
}

func ids(changes []reconcile.Change) []string {
	var out []string
	for _, c := range changes {
		out = append(out, c.ID.Instance+":"+c.Action.String())
	}
	return out
}

func revisions(specs []instance.Spec) []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.ID.Instance+"@"+s.Revision)
	}
	slices.Sort(out)
	return out
}

func TestPlugHash(t *testing.T) {
	v1, v2 := webSpecs("1", 3), webSpecs("2", 3)
	if reconcile.PlugHash(v1) == reconcile.PlugHash(v2) {
		t.Error("a new revision has the same hash")
	}
	shuffled := []instance.Spec{v1[2], v1[0], v1[1]}
	if reconcile.PlugHash(v1) != reconcile.PlugHash(shuffled) {
		t.Error("the hash depends on the order of instances")
	}
	// What is applied in place (stop settings, the policy itself) is not a
	// new revision.
	same := slices.Clone(v1)
	same[0].StopTimeout, same[0].Update = time.Hour, nil
	if reconcile.PlugHash(v1) != reconcile.PlugHash(same) {
		t.Error("an in-place change makes a new revision")
	}
	cfg := slices.Clone(v1)
	cfg[1] = withConfig(cfg[1], "{}", "{}")
	if reconcile.PlugHash(v1) == reconcile.PlugHash(cfg) {
		t.Error("a config change keeps the revision")
	}
	if len(reconcile.PlugHash(v1)) != 12 {
		t.Errorf("hash %q", reconcile.PlugHash(v1))
	}
}

func TestBatches(t *testing.T) {
	plan := reconcile.NewPlan(webSpecs("2", 5), runningAll(webSpecs("1", 5)))
	var got [][]string
	for _, b := range reconcile.Batches(plan.Changes, 2) {
		got = append(got, ids(b))
	}
	want := [][]string{{"a:replace", "b:replace"}, {"c:replace", "d:replace"}, {"e:replace"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
	if n := len(reconcile.Batches(plan.Changes, 0)); n != 5 {
		t.Errorf("max_parallel 0 gives %d batches, want 5 (one at a time)", n)
	}
}

func TestDecidePlug(t *testing.T) {
	v1, v2 := webSpecs("1", 3), webSpecs("2", 3)
	h1, h2 := reconcile.PlugHash(v1), reconcile.PlugHash(v2)
	healthy1 := &reconcile.Revision{Hash: h1, Specs: v1}
	noPolicy := slices.Clone(v2)
	for i := range noPolicy {
		noPolicy[i].Update = nil
	}
	// The first batch of v2 is done: a runs v2, b and c v1.
	half := runningAll(append([]instance.Spec{v2[0]}, v1[1:]...))

	for _, tc := range []struct {
		name     string
		desired  []instance.Spec
		observed []instance.Status
		rec      reconcile.PlugRecord
		// want
		desired2       []string
		rollout, watch []string
		judge, resumed bool
		dropHold       bool
		held           string
	}{
		{
			name: "no policy: at once", desired: noPolicy, observed: runningAll(v1),
			desired2: revisions(noPolicy),
		},
		{
			name: "first deploy: created at once, watched", desired: v2,
			desired2: revisions(v2), watch: []string{"a", "b", "c"}, judge: true,
		},
		{
			name: "new revision: replaces left to the rollout", desired: v2, observed: runningAll(v1), rec: reconcile.PlugRecord{LastHealthy: healthy1},
			desired2: revisions(v1), rollout: []string{"a:replace", "b:replace", "c:replace"}, judge: true,
		},
		{
			name: "mid-rollout: what is done stays done", desired: v2, observed: half, rec: reconcile.PlugRecord{LastHealthy: healthy1, Active: h2},
			desired2: []string{"a@rev-2", "b@rev-1", "c@rev-1"}, rollout: []string{"b:replace", "c:replace"}, judge: true,
		},
		{
			name: "already healthy: nothing to judge", desired: v1, observed: runningAll(v1), rec: reconcile.PlugRecord{LastHealthy: healthy1},
			desired2: revisions(v1),
		},
		{
			name: "healthy revision back mid-rollout: at once", desired: v1, observed: half, rec: reconcile.PlugRecord{LastHealthy: healthy1, Active: h2},
			desired2: revisions(v1),
		},
		{
			name: "reverted: the last healthy revision is held", desired: v2, observed: half,
			rec:      reconcile.PlugRecord{LastHealthy: healthy1, Hold: &reconcile.Hold{Hash: h2, Specs: v1, Reason: "reverted"}},
			desired2: revisions(v1), held: "reverted",
		},
		{
			name: "failed without revert: what runs stays", desired: v2, observed: half,
			rec:      reconcile.PlugRecord{LastHealthy: healthy1, Hold: &reconcile.Hold{Hash: h2, Reason: "failed"}},
			desired2: []string{"a@rev-2", "b@rev-1", "c@rev-1"}, held: "failed",
		},
		{
			name: "failed without revert, after a restart: the last healthy revision starts", desired: v2,
			rec:      reconcile.PlugRecord{LastHealthy: healthy1, Hold: &reconcile.Hold{Hash: h2, Reason: "failed"}},
			desired2: revisions(v1), held: "failed",
		},
		{
			name: "a failed rollout's hold ends with the update block", desired: noPolicy, observed: half,
			rec:      reconcile.PlugRecord{LastHealthy: healthy1, Hold: &reconcile.Hold{Hash: h2, Specs: v1, Reason: "reverted"}},
			desired2: revisions(noPolicy), dropHold: true,
		},
		{
			name: "a pin outlives the update block", desired: noPolicy, observed: runningAll(v1),
			rec:      reconcile.PlugRecord{LastHealthy: healthy1, Hold: &reconcile.Hold{Hash: h2, Specs: v1, Reason: "pinned", Pinned: true}},
			desired2: revisions(v1), held: "pinned",
		},
		{
			name: "a hold ends when the desired state changes", desired: webSpecs("3", 3), observed: runningAll(v1),
			rec:      reconcile.PlugRecord{LastHealthy: healthy1, Hold: &reconcile.Hold{Hash: h2, Specs: v1, Reason: "reverted"}},
			desired2: revisions(v1), rollout: []string{"a:replace", "b:replace", "c:replace"}, judge: true, dropHold: true,
		},
		{
			name: "killed mid-rollout: start on the last healthy revision and roll out again", desired: v2,
			rec:      reconcile.PlugRecord{LastHealthy: healthy1, Active: h2},
			desired2: revisions(v1), rollout: []string{"a:replace", "b:replace", "c:replace"}, judge: true, resumed: true,
		},
		{
			name: "killed mid-rollout that adds an instance", desired: webSpecs("2", 4),
			rec:      reconcile.PlugRecord{LastHealthy: healthy1, Active: reconcile.PlugHash(webSpecs("2", 4))},
			desired2: append(revisions(v1), "d@rev-2"), rollout: []string{"a:replace", "b:replace", "c:replace"}, watch: []string{"d"}, judge: true, resumed: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dec := reconcile.DecidePlug(tc.desired, tc.observed, tc.rec)
			var watch []string
			for _, id := range dec.Watch {
				watch = append(watch, id.Instance)
			}
			slices.Sort(watch)
			got := []any{revisions(dec.Desired), ids(dec.Rollout), watch, dec.Judge, dec.Resumed, dec.DropHold, dec.Held}
			want := []any{tc.desired2, tc.rollout, tc.watch, tc.judge, tc.resumed, tc.dropHold, tc.held}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}
			if want := reconcile.PlugHash(tc.desired); dec.Target != want && (dec.Target != "" || tc.rec.Hold != nil || tc.desired[0].Update != nil) {
				t.Errorf("target %s", dec.Target)
			}
			for _, c := range dec.Rollout {
				if c.After == nil || c.After.Revision != tc.desired[0].Revision {
					t.Errorf("%s rolls out to %+v", c.ID, c.After)
				}
			}
		})
	}
	// The record's specs are never written through.
	if revisions(healthy1.Specs)[0] != "a@rev-1" {
		t.Errorf("DecidePlug changed the record: %v", revisions(healthy1.Specs))
	}
}

func TestBatchVerdict(t *testing.T) {
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	u := instance.Update{MaxParallel: 2, MinHealthyTime: 10 * time.Second, HealthyDeadline: time.Minute}
	at := func(d time.Duration) time.Time { return start.Add(d) }
	a, b := instance.ID{Plug: "web", Instance: "a"}, instance.ID{Plug: "web", Instance: "b"}
	healthyFrom := func(d time.Duration) reconcile.Observation {
		return reconcile.Observation{OnTarget: true, Running: true, Ready: true, Passing: true, HealthySince: at(d)}
	}
	pending := reconcile.Observation{OnTarget: true, Running: true, Failure: "ready: no READY=1 yet"}
	restarted := func(healthy, started time.Duration, restarts int) reconcile.Observation {
		o := healthyFrom(healthy)
		o.StartedAt, o.Restarts = at(started), restarts
		return o
	}
	for _, tc := range []struct {
		name   string
		now    time.Duration
		obs    map[instance.ID]reconcile.Observation
		v      reconcile.Verdict
		wake   time.Duration // from start; -1: zero time
		reason string
	}{
		{name: "both healthy long enough", now: 15 * time.Second, obs: map[instance.ID]reconcile.Observation{a: healthyFrom(time.Second), b: healthyFrom(5 * time.Second)}, v: reconcile.Healthy, wake: -1},
		{name: "one not long enough: wake when it is", now: 12 * time.Second, obs: map[instance.ID]reconcile.Observation{a: healthyFrom(time.Second), b: healthyFrom(5 * time.Second)}, v: reconcile.Progressing, wake: 15 * time.Second},
		{name: "healthy before the batch counts from its start", now: 9 * time.Second, obs: map[instance.ID]reconcile.Observation{a: healthyFrom(-time.Hour)}, v: reconcile.Progressing, wake: 10 * time.Second},
		{name: "pending: wake at the deadline", now: 30 * time.Second, obs: map[instance.ID]reconcile.Observation{a: healthyFrom(0), b: pending}, v: reconcile.Progressing, wake: time.Minute},
		{name: "never ready by the deadline", now: time.Minute, obs: map[instance.ID]reconcile.Observation{a: healthyFrom(0), b: pending}, v: reconcile.Failed, wake: -1, reason: "b: never ready (ready: no READY=1 yet)"},
		{name: "crash loop by the deadline", now: 61 * time.Second, obs: map[instance.ID]reconcile.Observation{
			a: {OnTarget: true, Running: false, Restarts: 3, Failure: "exit 1"},
			b: {OnTarget: true, Running: true, Ready: true, Failure: "web: connection refused"},
		}, v: reconcile.Failed, wake: -1, reason: "a: crash loop (3 restarts) (exit 1); b: unhealthy (web: connection refused)"},
		{name: "gave up fails at once", now: 5 * time.Second, obs: map[instance.ID]reconcile.Observation{a: {OnTarget: true, GaveUp: true, Restarts: 4}}, v: reconcile.Failed, wake: -1, reason: "a: gave up after 4 restarts"},
		{name: "old spec after a failed start", now: time.Minute, obs: map[instance.ID]reconcile.Observation{a: {Running: true, Passing: true, Ready: true, HealthySince: at(0)}}, v: reconcile.Failed, wake: -1, reason: "a: not running the new revision"},
		{name: "crash loop, up again briefly at the deadline", now: time.Minute, obs: map[instance.ID]reconcile.Observation{a: func() reconcile.Observation {
			o := healthyFrom(58 * time.Second)
			o.Restarts = 2
			return o
		}(), b: healthyFrom(0)}, v: reconcile.Failed, wake: -1, reason: "a: crash loop (2 restarts), healthy for only 2s of 10s"},
		// A crash and a restart between two samples, which the checks have
		// not yet seen: the health read is the old process's (healthy since
		// 1s), the process that runs started at 8s. Not healthy: no check
		// has passed in this process.
		{name: "restarted between samples, health of the old process", now: 15 * time.Second, obs: map[instance.ID]reconcile.Observation{a: restarted(time.Second, 8*time.Second, 1)}, v: reconcile.Progressing, wake: time.Minute},
		{name: "restarted between samples, without a restart count", now: 15 * time.Second, obs: map[instance.ID]reconcile.Observation{a: restarted(time.Second, 8*time.Second, 0)}, v: reconcile.Progressing, wake: time.Minute},
		{name: "restarted, healthy in the new process: the window starts over", now: 15 * time.Second, obs: map[instance.ID]reconcile.Observation{a: restarted(9*time.Second, 8*time.Second, 1)}, v: reconcile.Progressing, wake: 19 * time.Second},
		{name: "restarted, healthy in the new process long enough", now: 19 * time.Second, obs: map[instance.ID]reconcile.Observation{a: restarted(9*time.Second, 8*time.Second, 1)}, v: reconcile.Healthy, wake: -1},
		{name: "restarted, health of the old process at the deadline", now: time.Minute, obs: map[instance.ID]reconcile.Observation{a: restarted(50*time.Second, 55*time.Second, 0), b: healthyFrom(0)}, v: reconcile.Failed, wake: -1, reason: "a: restarted, not yet checked"},
		{name: "healthy once, too briefly, at the deadline", now: time.Minute, obs: map[instance.ID]reconcile.Observation{a: healthyFrom(55 * time.Second)}, v: reconcile.Failed, wake: -1, reason: "a: healthy for only 5s of 10s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, wake, reason := reconcile.BatchVerdict(at(tc.now), start, u, tc.obs)
			want := time.Time{}
			if tc.wake >= 0 {
				want = at(tc.wake)
			}
			if v != tc.v || !wake.Equal(want) || reason != tc.reason {
				t.Errorf("got %s wake %v %q, want %s wake %v %q", v, wake, reason, tc.v, want, tc.reason)
			}
			if v == reconcile.Failed && strings.Contains(reason, "\n") {
				t.Errorf("reason on several lines: %q", reason)
			}
		})
	}
}
