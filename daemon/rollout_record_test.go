package daemon

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/instance"
)

// TestRolloutRecordBounds: a plug's record keeps its last maxHistory
// revisions and the specs of its last maxRestorable healthy ones, but never
// drops the last healthy revision or the one a hold runs, however old.
func TestRolloutRecordBounds(t *testing.T) {
	rec := &plugRollout{Plug: "web"}
	specs := []instance.Spec{{ID: instance.ID{Plug: "web", Instance: "a"}}}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rec.note(&revision{ID: "r00", Verdict: api.RolloutHealthy, Deployed: at, Specs: specs})
	rec.LastHealthy = "r00"
	rec.note(&revision{ID: "r01", Verdict: api.RolloutHealthy, Deployed: at, Specs: specs})
	rec.Hold = &holdRecord{Desired: "x", Kind: api.RolloutPinned, Runs: "r01"}
	for i := 2; i < 40; i++ {
		verdict := api.RolloutFailed
		if i%2 == 0 {
			verdict = api.RolloutHealthy
		}
		rec.note(&revision{ID: fmt.Sprintf("r%02d", i), Verdict: verdict, Deployed: at, Specs: specs})
	}
	if len(rec.History) != maxHistory {
		t.Errorf("%d revisions kept, want %d", len(rec.History), maxHistory)
	}
	var withSpecs []string
	for _, r := range rec.History {
		if r.Specs != nil {
			withSpecs = append(withSpecs, r.ID)
		}
	}
	if got, want := strings.Join(withSpecs, " "), "r00 r01 r30 r32 r34 r36 r38"; got != want {
		t.Errorf("revisions with specs: %s, want %s (the last healthy, the pinned, the last 5 healthy)", got, want)
	}
	if rec.find("r00") == nil || rec.find("r01") == nil || rec.find("r05") != nil {
		t.Errorf("history %v", withSpecs)
	}
	// Noting a revision again moves it to the end and keeps its specs.
	rec.note(&revision{ID: "r36", Verdict: api.RolloutHealthy})
	if last := rec.History[len(rec.History)-1]; last.ID != "r36" || last.Specs == nil {
		t.Errorf("renoted %+v", last)
	}

	// plugs rollback's choice.
	for _, tc := range []struct{ name, target, want, err string }{
		{"", "r36", "r38", ""}, // the newest healthy one that is not plugs.hcl's
		{"r3", "", "", "several revisions"},
		{"r01", "", "r01", ""},
		{"r33", "", "", "was failed"},
		{"nope", "", "", "no revision nope"},
	} {
		got, err := rec.pick(tc.name, tc.target)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("pick(%q): %v, want an error with %q", tc.name, err, tc.err)
		case tc.err == "" && (err != nil || got.ID != tc.want):
			t.Errorf("pick(%q, %q) = %+v, %v; want %s", tc.name, tc.target, got, err, tc.want)
		}
	}
}

// TestDamagedRolloutRecordMovedAside: a record that does not parse does
// not keep the daemon from starting: it is moved aside and logged, and the
// other plugs keep theirs.
func TestDamagedRolloutRecordMovedAside(t *testing.T) {
	state := t.TempDir()
	dir := filepath.Join(state, "rollouts")
	writeFile(t, filepath.Join(dir, "web.json"), `{"plug": "web", "history": [`)
	writeFile(t, filepath.Join(dir, "other.json"), `{"plug": "other", "last_healthy": "abc", "history": []}`)
	var log jsonLog
	ro, err := openRollouts(state, slog.New(slog.NewJSONHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if ro.recs["web"] != nil || ro.recs["other"] == nil || ro.recs["other"].LastHealthy != "abc" {
		t.Errorf("records %v", ro.recs)
	}
	if _, err := os.Stat(filepath.Join(dir, "web.json.damaged")); err != nil {
		t.Error(err)
	}
	if n := count(log.records(t), "rollout record damaged: moved aside, the plug starts afresh"); n != 1 {
		t.Errorf("logged %d times", n)
	}
}
