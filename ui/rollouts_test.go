package ui

import (
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRollouts is the fake with one plug rolling out.
type fakeRollouts struct {
	*fakeBackend
	rmu sync.Mutex
	ro  Rollout
	his []RolloutRevision
}

var _ RolloutReader = (*fakeRollouts)(nil)

func (f *fakeRollouts) Rollouts() []Rollout {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	return []Rollout{f.ro}
}

func (f *fakeRollouts) RolloutHistory(plug string) ([]RolloutRevision, error) {
	f.rmu.Lock()
	defer f.rmu.Unlock()
	if plug != f.ro.Plug {
		return nil, errors.New("no history for plug " + plug)
	}
	return append([]RolloutRevision(nil), f.his...), nil
}

// TestRolloutsOnPagesAndEvents: the rollout shows in the list, on the
// plug's instance pages and its own page; a change of it is sent as a
// patch event of its own (a page parses each patch as one fragment: table
// rows and sections in one would lose the section's table).
func TestRolloutsOnPagesAndEvents(t *testing.T) {
	now := time.Now()
	f := &fakeRollouts{fakeBackend: newFake(20),
		ro: Rollout{Plug: "plug-03", State: "rolling-out", Desired: "bbbbbbbbbbbb", LastHealthy: "aaaaaaaaaaaa", Batch: 1, Batches: 2,
			OnTarget: 1, Instances: 2, Healthy: 0, Unproven: 1, AutoRevert: true, Since: now},
		his: []RolloutRevision{{ID: "bbbbbbbbbbbb", Verdict: "rolling-out", Deployed: now}, {ID: "aaaaaaaaaaaa", Verdict: "healthy", Deployed: now, Judged: now, Runs: true, LastHealthy: true}},
	}
	s, err := New(Options{Backend: f, ProcRoot: "-", Coalesce: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		s.Close()
		srv.Close()
	})
	jar, _ := cookiejar.New(nil)
	h := &harness{t: t, f: f.fakeBackend, s: s, srv: srv, c: &http.Client{Jar: jar}}

	for _, path := range []string{"/", "/instances"} {
		_, body := h.get(path)
		if !strings.Contains(body, `<tr data-plug="plug-03" data-state="rolling-out">`) || !strings.Contains(body, `href="/rollouts/plug-03"`) {
			t.Errorf("%s does not list the rollout:\n%s", path, body)
		}
	}
	_, body := h.get("/instances/plug-03/inst-0003")
	for _, want := range []string{`data-testid="rollout-batch">1 of 2`, `1 of 2: 0 healthy, 1 unproven`, "1 of 2 on bbbbbbbbbbbb, the others on aaaaaaaaaaaa", "a failure reverts to aaaaaaaaaaaa"} {
		if !strings.Contains(body, want) {
			t.Errorf("the instance page lacks %q", want)
		}
	}
	if _, body := h.get("/instances/plug-04/inst-0004"); strings.Contains(body, "rollout-state") || !strings.Contains(body, `<section id="`+domID("ro-", InstanceID{Plug: "plug-04"})+`" hidden>`) {
		t.Error("an instance page of a plug without a rollout shows one, or has no place for one")
	}
	code, body := h.get("/rollouts/plug-03")
	if code != http.StatusOK || strings.Count(body, "<tr data-id=") != 2 || !strings.Contains(body, "last healthy") {
		t.Errorf("rollout page %d:\n%s", code, body)
	}
	if code, _ := h.get("/rollouts/nope"); code != http.StatusNotFound {
		t.Errorf("rollout page of no plug: %d", code)
	}

	ev := h.stream("/events")
	f.rmu.Lock()
	f.ro.State, f.ro.Override, f.ro.Reason = "reverted", "aaaaaaaaaaaa", "reverted to aaaaaaaaaaaa: the rollout of bbbbbbbbbbbb failed"
	f.his[0].Verdict = "failed"
	f.rmu.Unlock()
	if err := f.crash(InstanceID{Plug: "plug-03", Instance: "inst-0003"}, "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	s.Notify()
	d := ev.until(t, "patch", `id="rollouts"`)
	for _, want := range []string{domID("ro-", InstanceID{Plug: "plug-03"}), domID("rh-", InstanceID{Plug: "plug-03"}), "auto_revert went back to aaaaaaaaaaaa", `data-verdict="failed"`} {
		if !strings.Contains(d, want) {
			t.Errorf("the rollout patch lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, `<tr id="i-`) {
		t.Errorf("the rollout patch carries instance rows:\n%s", d)
	}
	if strings.Contains(d, plantedSecret) {
		t.Error("the planted secret is in an event")
	}
}
