package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/plugs-dev/plugs/instance"
)

func newTestManager(t *testing.T, r Runner, stateDir string, targets ...instance.Spec) *Manager {
	t.Helper()
	m := NewManager(Options{Runner: r, StateDir: stateDir})
	t.Cleanup(m.Close)
	if err := m.Update(targets); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestExecPassesJSONThroughAndTextAsString(t *testing.T) {
	m := newTestManager(t, &fakeRunner{}, t.TempDir(), target("notify", "default", Config{}))
	res, err := m.Exec(t.Context(), Request{Plug: "notify", Input: []byte(`{"to": "+4912345", "text": "hi"}` + "\n")})
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != ResultSuccess || res.OutputType != OutputJSON || res.OutputTruncated {
		t.Fatalf("result = %+v", res)
	}
	var got map[string]string
	if err := json.Unmarshal(res.Output, &got); err != nil || got["to"] != "+4912345" {
		t.Fatalf("output %s is not the plugin's JSON: %v", res.Output, err)
	}
	b, _ := json.Marshal(res)
	if !strings.Contains(string(b), `"output":{"to":"+4912345","text":"hi"}`) {
		t.Fatalf("JSON output not passed through as JSON: %s", b)
	}

	res, err = m.Exec(t.Context(), Request{Plug: "notify", Instance: "default", Input: []byte("plain text")})
	if err != nil {
		t.Fatal(err)
	}
	if res.OutputType != OutputText || string(res.Output) != `"plain text"` || res.Text() != "plain text" {
		t.Fatalf("text output = %s (%s)", res.Output, res.OutputType)
	}
}

func TestExecOutputCapIsTheCallersToRaiseUpToTheLimit(t *testing.T) {
	cfg := Config{OutputLimit: 10, MaxOutput: 100}
	m := newTestManager(t, &fakeRunner{}, "", target("p", "default", cfg))
	big := strings.Repeat("x", 50)

	res, err := m.Exec(t.Context(), Request{Plug: "p", Input: []byte(big)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OutputTruncated || res.Text() != big[:10] || res.OutputType != OutputText {
		t.Fatalf("default cap: %+v", res)
	}
	res, err = m.Exec(t.Context(), Request{Plug: "p", Input: []byte(big), MaxOutput: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.OutputTruncated || res.Text() != big {
		t.Fatalf("raised cap: %+v", res)
	}
	_, err = m.Exec(t.Context(), Request{Plug: "p", MaxOutput: 101})
	var in *InputError
	if !errors.As(err, &in) {
		t.Fatalf("cap above the limit: err = %v, want an InputError", err)
	}
	// A truncated JSON document is text, not broken JSON.
	res, _ = m.Exec(t.Context(), Request{Plug: "p", Input: []byte(`{"a": "0123456789"}`)})
	if res.OutputType != OutputText || !res.OutputTruncated {
		t.Fatalf("truncated JSON: %+v", res)
	}
}

func TestExecTimeoutIsBoundedByMaxTimeout(t *testing.T) {
	var got time.Duration
	r := &fakeRunner{fn: func(_ context.Context, _ instance.Spec, run Run) (Outcome, error) {
		got = run.Timeout
		return Outcome{ExitCode: -1, Signal: "SIGKILL", TimedOut: true}, nil
	}}
	m := newTestManager(t, r, "", target("p", "default", Config{Timeout: time.Second, MaxTimeout: time.Minute}))
	res, err := m.Exec(t.Context(), Request{Plug: "p", Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got != 30*time.Second || res.Result != ResultTimeout || res.Signal != "SIGKILL" {
		t.Fatalf("timeout %s, result %+v", got, res)
	}
	if _, err := m.Exec(t.Context(), Request{Plug: "p", Timeout: 2 * time.Minute}); err == nil {
		t.Fatal("a timeout above max_timeout was accepted")
	}
	if _, err := m.Exec(t.Context(), Request{Plug: "p"}); err != nil || got != time.Second {
		t.Fatalf("default timeout: %s, %v", got, err)
	}
}

func TestExecEnvironmentAndInputFile(t *testing.T) {
	dir := t.TempDir()
	var inputSeen string
	r := &fakeRunner{fn: func(_ context.Context, _ instance.Spec, run Run) (Outcome, error) {
		b, err := os.ReadFile(run.Env["PLUGS_INPUT"])
		if err != nil {
			return Outcome{}, err
		}
		fi, _ := os.Stat(run.Env["PLUGS_INPUT"])
		inputSeen = fmt.Sprintf("%s %o %s", b, fi.Mode().Perm(), run.Env["PLUGS_RUN_ID"])
		return Outcome{Stderr: []byte(strings.Repeat("e", 10000) + "\nlast line\n")}, nil
	}}
	m := newTestManager(t, r, dir, target("p", "a", Config{}), target("p", "b", Config{}))
	res, err := m.Exec(t.Context(), Request{Plug: "p", Instance: "b", Input: []byte("in")})
	if err != nil {
		t.Fatal(err)
	}
	if want := "in 600 " + res.RunID; inputSeen != want {
		t.Fatalf("input file: %q, want %q", inputSeen, want)
	}
	if !strings.HasSuffix(res.StderrTail, "last line\n") || len(res.StderrTail) > StderrTail {
		t.Fatalf("stderr tail of %d bytes: ...%q", len(res.StderrTail), res.StderrTail[max(0, len(res.StderrTail)-20):])
	}
	left, _ := filepath.Glob(filepath.Join(dir, "tasks", "p", "input", "*"))
	if len(left) != 0 {
		t.Fatalf("input files left: %v", left)
	}
	if _, err := m.Exec(t.Context(), Request{Plug: "p"}); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "a, b") {
		t.Fatalf("ambiguous instance: %v", err)
	}
	if _, err := m.Exec(t.Context(), Request{Plug: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown plug: %v", err)
	}
}

func TestStartFailureIsAnErrorResult(t *testing.T) {
	obs := newFakeObserver()
	r := &fakeRunner{fn: func(context.Context, instance.Spec, Run) (Outcome, error) {
		return Outcome{}, errors.New("exec: no such file")
	}}
	m := NewManager(Options{Runner: r, Observer: obs})
	defer m.Close()
	m.Update([]instance.Spec{target("p", "default", Config{})})
	res, err := m.Exec(t.Context(), Request{Plug: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != ResultError || res.Error != "exec: no such file" || res.ExitCode != -1 {
		t.Fatalf("result = %+v", res)
	}
	if obs.count("p/error", false) != 1 {
		t.Fatalf("observer: %+v", obs.runs)
	}
}

// TestOOMKilledRunIsSaid: a run the kernel killed at its memory limit is
// a failure that says so, in the result and in the history.
func TestOOMKilledRunIsSaid(t *testing.T) {
	r := &fakeRunner{fn: func(context.Context, instance.Spec, Run) (Outcome, error) {
		return Outcome{ExitCode: -1, Signal: "SIGKILL", OOMKilled: true}, nil
	}}
	m := newTestManager(t, r, t.TempDir(), target("p", "default", Config{}))
	res, err := m.Exec(t.Context(), Request{Plug: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != ResultFailure || !res.OOMKilled {
		t.Fatalf("result = %+v, want a failure marked oom_killed", res)
	}
	if b, _ := json.Marshal(res); !strings.Contains(string(b), `"oom_killed":true`) {
		t.Errorf("the result's JSON does not say it: %s", b)
	}
}

// 200 concurrent calls against max_concurrent = 4: never more than 4 runs at
// once, every call answered (run or busy), every run in the history.
func TestConcurrentCallsAreBoundedAndNoneLost(t *testing.T) {
	release := make(chan struct{})
	r := &fakeRunner{fn: func(ctx context.Context, _ instance.Spec, run Run) (Outcome, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return Outcome{Output: run.Input}, nil
	}}
	obs := newFakeObserver()
	m := NewManager(Options{Runner: r, Observer: obs})
	defer m.Close()
	m.Update([]instance.Spec{target("p", "default", Config{MaxConcurrent: 4, Queue: 16, History: 1000})})

	const calls = 200
	var (
		wg             sync.WaitGroup
		mu             sync.Mutex
		ran, busy      int
		inputs         = map[string]bool{}
		retry          time.Duration
		otherErr       error
		admittedOrBusy = make(chan struct{}, calls)
	)
	for i := range calls {
		wg.Go(func() {
			in := fmt.Sprint(i)
			res, err := m.Exec(t.Context(), Request{Plug: "p", Input: []byte(in)})
			mu.Lock()
			defer mu.Unlock()
			var b *BusyError
			switch {
			case err == nil:
				ran++
				inputs[res.Text()] = true
			case errors.As(err, &b):
				busy++
				retry = b.RetryAfter
				admittedOrBusy <- struct{}{}
			default:
				otherErr = err
			}
		})
	}
	// Wait until all but the 20 admitted (4 running + 16 queued) are answered busy.
	for range calls - 20 {
		<-admittedOrBusy
	}
	waitFor(t, func() bool { return r.active.Load() == 4 })
	close(release)
	wg.Wait()
	if otherErr != nil {
		t.Fatal(otherErr)
	}
	if r.peak.Load() > 4 {
		t.Fatalf("peak of %d concurrent runs, want at most 4", r.peak.Load())
	}
	if ran != 20 || busy != 180 || len(inputs) != ran {
		t.Fatalf("ran %d (%d distinct inputs), busy %d; want 20 and 180", ran, len(inputs), busy)
	}
	if retry < time.Second {
		t.Fatalf("retry after %s", retry)
	}
	runs, _ := m.Runs("p", "", 0)
	if len(runs) != ran {
		t.Fatalf("history holds %d runs, want %d", len(runs), ran)
	}
	if obs.count("p/busy", true) != busy || obs.count("p/success", false) != ran {
		t.Fatalf("observer: runs %v skipped %v", obs.runs, obs.skipped)
	}
}

func TestQueuedCallLeavesWhenItsCallerGoes(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	r := &fakeRunner{fn: func(ctx context.Context, _ instance.Spec, run Run) (Outcome, error) {
		started <- struct{}{}
		<-release
		return Outcome{}, nil
	}}
	m := newTestManager(t, r, "", target("p", "default", Config{MaxConcurrent: 1, Queue: 1}))
	done := make(chan error, 1)
	go func() { _, err := m.Exec(context.Background(), Request{Plug: "p"}); done <- err }()
	<-started
	ctx, cancel := context.WithCancel(t.Context())
	queued := make(chan error, 1)
	go func() { _, err := m.Exec(ctx, Request{Plug: "p"}); queued <- err }()
	waitFor(t, func() bool { return m.Status()[0].Queued == 1 })
	// The queue (1) is full: a third call is busy.
	var b *BusyError
	if _, err := m.Exec(t.Context(), Request{Plug: "p"}); !errors.As(err, &b) {
		t.Fatalf("third call: %v, want busy", err)
	}
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued call: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The slot is free again.
	if _, err := m.Exec(t.Context(), Request{Plug: "p"}); err != nil {
		t.Fatal(err)
	}
}

func TestHistoryIsBoundedAndSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{History: 3}
	m := NewManager(Options{Runner: &fakeRunner{}, StateDir: dir})
	m.Update([]instance.Spec{target("p", "default", cfg)})
	for i := range 5 {
		if _, err := m.Exec(t.Context(), Request{Plug: "p", Input: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	m.Close()

	obs := newFakeObserver()
	m2 := NewManager(Options{Runner: &fakeRunner{}, StateDir: dir, Observer: obs})
	defer m2.Close()
	m2.Update([]instance.Spec{target("p", "default", cfg)})
	runs, err := m2.Runs("p", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range runs {
		got = append(got, r.Text())
	}
	if diff := cmp.Diff([]string{"4", "3", "2"}, got); diff != "" {
		t.Fatalf("history (-want +got):\n%s", diff)
	}
	if obs.success["p"].IsZero() {
		t.Fatal("the last success was not restored from the history")
	}
	fromDisk, err := ReadHistory(dir, "p")
	if err != nil || len(fromDisk) != 3 {
		t.Fatalf("ReadHistory: %d runs, %v", len(fromDisk), err)
	}
	fi, _ := os.Stat(filepath.Join(dir, "tasks", "p", "runs.json"))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("runs.json mode %o", fi.Mode().Perm())
	}
}

func TestHistoryCutsLargeOutput(t *testing.T) {
	m := newTestManager(t, &fakeRunner{}, t.TempDir(), target("p", "default", Config{}))
	big := strings.Repeat("y", historyOutput*3)
	res, _ := m.Exec(t.Context(), Request{Plug: "p", Input: []byte(big)})
	if res.Text() != big {
		t.Fatal("the answer was cut to the history's size")
	}
	runs, _ := m.Runs("p", "", 1)
	if len(runs[0].Text()) != historyOutput || !runs[0].OutputTruncated {
		t.Fatalf("history output of %d bytes, truncated %v", len(runs[0].Text()), runs[0].OutputTruncated)
	}
}

func TestUpdateForgetsRemovedPlugs(t *testing.T) {
	obs := newFakeObserver()
	m := NewManager(Options{Runner: &fakeRunner{}, Observer: obs})
	defer m.Close()
	m.Update([]instance.Spec{target("a", "default", Config{}), target("b", "default", Config{})})
	if !m.IsTask("a") || len(m.Status()) != 2 {
		t.Fatal("tasks not known")
	}
	m.Update([]instance.Spec{target("b", "default", Config{})})
	if m.IsTask("a") {
		t.Fatal("a still a task")
	}
	if _, ok := obs.success["a"]; ok {
		t.Fatal("a not forgotten by the observer")
	}
}

// waitFor polls cond, a bounded number of times.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("condition not met in 10 s")
}
