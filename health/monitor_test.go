package health

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// scripted is a Prober whose results a test sets.
type scripted struct {
	mu    sync.Mutex
	ok    map[string]bool
	out   map[string]string
	calls map[string]int
}

func newScripted() *scripted {
	return &scripted{ok: map[string]bool{}, out: map[string]string{}, calls: map[string]int{}}
}

func (s *scripted) set(name string, ok bool, out string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ok[name], s.out[name] = ok, out
}

func (s *scripted) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

func (s *scripted) Probe(ctx context.Context, _ ID, c Check, dir string, env []string) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[c.Name]++
	return Result{OK: s.ok[c.Name], Output: s.out[c.Name]}
}

var testID = ID{Plug: "p", Instance: "i"}

// harness runs a Manager with a scripted prober in a synctest bubble.
type harness struct {
	t        *testing.T
	m        *Manager
	probe    *scripted
	mu       sync.Mutex
	restarts []string
}

func newHarness(t *testing.T, cfg Config) *harness {
	h := &harness{t: t, probe: newScripted()}
	h.m = New(Options{StateDir: t.TempDir(), Prober: h.probe, Restart: func(id ID, reason string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.restarts = append(h.restarts, reason)
	}})
	h.m.listen = noSocket
	if err := h.m.Configure(testID, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.m.Close)
	return h
}

func (h *harness) status() Status {
	h.t.Helper()
	synctest.Wait()
	s, ok := h.m.Status(testID)
	if !ok {
		h.t.Fatal("no status")
	}
	return s
}

func (h *harness) expect(health string, ready bool) Status {
	h.t.Helper()
	s := h.status()
	if s.Health != health || s.Ready != ready {
		h.t.Fatalf("at %s: health %q ready %t, want %q %t (%+v)", time.Now().UTC().Format("15:04:05"), s.Health, s.Ready, health, ready, s)
	}
	return s
}

func (h *harness) restartReasons() []string {
	synctest.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.restarts...)
}

func TestActiveCheckReadinessAndLiveness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Checks: []Check{{Name: "web", Type: TypeHTTP, Interval: 10 * time.Second, Timeout: time.Second, Failures: 2}}})
		h.probe.set("web", false, "connection refused")
		h.m.Observe(testID, true, 100, time.Now())
		s := h.expect(Pending, false)
		if s.LastFailure != "web: connection refused" {
			t.Errorf("last failure %q", s.LastFailure)
		}
		// Before the first pass it probes every second, not every interval.
		time.Sleep(time.Second)
		h.probe.set("web", true, "HTTP 200")
		time.Sleep(time.Second)
		s = h.expect(Healthy, true)
		readyAt := s.ReadyAt
		if s.HealthySince != readyAt || readyAt.IsZero() {
			t.Errorf("healthy since %v, ready at %v", s.HealthySince, readyAt)
		}
		calls := h.probe.count("web")
		// Then every interval: one failure of two allowed keeps it healthy.
		h.probe.set("web", false, "HTTP 503:\n  busy ")
		time.Sleep(10 * time.Second)
		h.expect(Healthy, true)
		if got := h.probe.count("web") - calls; got != 1 {
			t.Errorf("%d probes in one interval, want 1", got)
		}
		time.Sleep(10 * time.Second)
		s = h.expect(Unhealthy, true)
		if s.LastFailure != "web: HTTP 503: busy" || s.Checks[0].ConsecutiveFailures != 2 || s.Passing() {
			t.Errorf("unhealthy status %+v", s)
		}
		h.probe.set("web", true, "HTTP 200")
		time.Sleep(10 * time.Second)
		s = h.expect(Healthy, true)
		if s.ReadyAt != readyAt || !s.HealthySince.After(readyAt) {
			t.Errorf("ready at %v (was %v), healthy since %v", s.ReadyAt, readyAt, s.HealthySince)
		}
		if len(h.restartReasons()) != 0 {
			t.Error("restarted without check_restart")
		}
	})
}

func TestNoChecksIsReadyWhenRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{})
		h.expect(None, false)
		h.m.Observe(testID, true, 1, time.Now())
		if s := h.expect(None, true); !s.Passing() {
			t.Errorf("a running instance without checks is not passing: %+v", s)
		}
		h.m.Observe(testID, false, 0, time.Time{})
		if s := h.expect(None, false); s.Passing() {
			t.Error("a stopped instance is passing")
		}
	})
}

func TestCheckRestartAfterLimitPastGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{
			Checks:       []Check{{Name: "probe", Type: TypeExec, Interval: 5 * time.Second, Timeout: time.Second, Failures: 1}},
			RestartLimit: 3, RestartGrace: 10 * time.Second,
		})
		h.probe.set("probe", true, "")
		h.m.Observe(testID, true, 1, time.Now())
		h.expect(Healthy, true)
		h.probe.set("probe", false, "exit 1: broken")
		// Failures at 5s (in grace), 10s, 15s, 20s: the third counted one restarts.
		time.Sleep(15 * time.Second)
		h.expect(Unhealthy, true)
		if r := h.restartReasons(); len(r) != 0 {
			t.Fatalf("restarted during grace or too early: %q", r)
		}
		time.Sleep(5 * time.Second)
		r := h.restartReasons()
		if len(r) != 1 || !strings.Contains(r[0], "check probe failed 3 times in a row: exit 1: broken") {
			t.Fatalf("restarts %q", r)
		}
		// Asked once per process, however long the next start takes.
		time.Sleep(20 * time.Second)
		if r := h.restartReasons(); len(r) != 1 {
			t.Fatalf("restarts %q", r)
		}
		// The new process starts over from pending, and may be restarted again.
		h.m.Observe(testID, true, 2, time.Now())
		h.expect(Pending, false)
		time.Sleep(30 * time.Second)
		if r := h.restartReasons(); len(r) != 2 {
			t.Fatalf("restarts %q", r)
		}
		if s := h.status(); s.Restarts != 2 {
			t.Errorf("restarts in status %d", s.Restarts)
		}
	})
}

func TestDataCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Checks: []Check{{Name: "fresh", Type: TypeData, Within: 30 * time.Second, Failures: 1}}, RestartLimit: 2})
		start := time.Now()
		h.m.Observe(testID, true, 1, start)
		h.expect(Pending, false)
		time.Sleep(5 * time.Second)
		h.m.Data(testID, time.Now())
		h.expect(Healthy, true)
		// Messages every 10 s keep it healthy well past within.
		for range 6 {
			time.Sleep(10 * time.Second)
			h.m.Data(testID, time.Now())
		}
		h.expect(Healthy, true)
		last := time.Now()
		if got := h.m.LastData(testID); !got.Equal(last) {
			t.Errorf("last data %v, want %v", got, last)
		}
		time.Sleep(30 * time.Second)
		s := h.expect(Unhealthy, true)
		if s.LastFailure != "fresh: no data for 30s (last 30s ago)" {
			t.Errorf("last failure %q", s.LastFailure)
		}
		if len(h.restartReasons()) != 0 {
			t.Fatal("restarted at the first failure")
		}
		time.Sleep(30 * time.Second)
		if r := h.restartReasons(); len(r) != 1 {
			t.Fatalf("restarts %q", r)
		}
		if s := h.status(); s.Checks[0].Passes != 7 || s.Checks[0].Fails != 2 {
			t.Errorf("passes %d fails %d", s.Checks[0].Passes, s.Checks[0].Fails)
		}
	})
}

func TestNotifyReadinessAndWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Checks: []Check{{Name: "ready", Type: TypeNotify, Timeout: 20 * time.Second, Watchdog: 10 * time.Second, Failures: 1}}})
		// READY=1 from the new process before its start is observed counts.
		h.m.Notify(testID, 42, map[string]string{"READY": "1", "STATUS": "warming up"})
		h.m.Observe(testID, true, 42, time.Now())
		s := h.expect(Healthy, true)
		if s.NotifyStatus != "warming up" {
			t.Errorf("notify status %q", s.NotifyStatus)
		}
		// WATCHDOG=1 every 5 s keeps it healthy; silence fails it.
		for range 4 {
			time.Sleep(5 * time.Second)
			h.m.Notify(testID, 42, map[string]string{"WATCHDOG": "1"})
		}
		h.expect(Healthy, true)
		time.Sleep(10 * time.Second)
		if s := h.expect(Unhealthy, true); s.LastFailure != "ready: no WATCHDOG=1 for 10s" {
			t.Errorf("last failure %q", s.LastFailure)
		}
		h.m.Notify(testID, 42, map[string]string{"WATCHDOG": "1"})
		h.expect(Healthy, true)
		h.m.Notify(testID, 42, map[string]string{"WATCHDOG": "trigger"})
		h.expect(Unhealthy, true)

		// A new process: the old READY=1 does not make it ready, nor a
		// message from another process group.
		h.m.Observe(testID, true, 43, time.Now())
		h.expect(Pending, false)
		h.m.Notify(testID, 42, map[string]string{"READY": "1"})
		h.expect(Pending, false)
		time.Sleep(20 * time.Second)
		if s := h.expect(Pending, false); s.LastFailure != "ready: no READY=1 within 20s" {
			t.Errorf("last failure %q", s.LastFailure)
		}
		// A sender whose group is unknown (it exited at once) counts by time.
		h.m.Notify(testID, 0, map[string]string{"READY": "1"})
		h.expect(Healthy, true)
	})
}

func TestStopVoidsTimersAndReconfigure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Checks: []Check{{Name: "a", Type: TypeTCP, Interval: time.Second, Timeout: time.Second, Failures: 1}}})
		h.probe.set("a", true, "")
		h.probe.set("b", true, "")
		h.m.Observe(testID, true, 1, time.Now())
		h.expect(Healthy, true)
		h.m.Observe(testID, false, 0, time.Time{})
		h.expect(None, false)
		n := h.probe.count("a")
		time.Sleep(time.Minute)
		if h.probe.count("a") != n {
			t.Error("a stopped instance is still probed")
		}
		h.m.Observe(testID, true, 2, time.Now())
		h.expect(Healthy, true)
		// Same configuration: nothing starts over.
		before := h.status().HealthySince
		time.Sleep(time.Second)
		if err := h.m.Configure(testID, Config{Checks: []Check{{Name: "a", Type: TypeTCP, Interval: time.Second, Timeout: time.Second, Failures: 1}}}); err != nil {
			t.Fatal(err)
		}
		if s := h.status(); s.HealthySince != before {
			t.Error("configuring the same checks started them over")
		}
		// A new check: still ready, checks start over.
		if err := h.m.Configure(testID, Config{Checks: []Check{{Name: "b", Type: TypeExec, Interval: time.Second, Timeout: time.Second, Failures: 1}}}); err != nil {
			t.Fatal(err)
		}
		if s := h.expect(Healthy, true); s.Checks[0].Name != "b" {
			t.Errorf("checks %+v", s.Checks)
		}
		h.m.Remove(testID)
		if _, ok := h.m.Status(testID); ok {
			t.Error("removed instance has a status")
		}
		n = h.probe.count("b")
		time.Sleep(time.Minute)
		if h.probe.count("b") != n {
			t.Error("a removed instance is still probed")
		}
	})
}

func TestOnChangeOnlyOnVisibleChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		changes := 0
		probe := newScripted()
		probe.set("a", true, "")
		m := New(Options{StateDir: t.TempDir(), Prober: probe, OnChange: func(ID) { mu.Lock(); changes++; mu.Unlock() }})
		defer m.Close()
		if err := m.Configure(testID, Config{Checks: []Check{{Name: "a", Type: TypeHTTP, Interval: time.Second, Timeout: time.Second, Failures: 1}}}); err != nil {
			t.Fatal(err)
		}
		m.Observe(testID, true, 1, time.Now())
		synctest.Wait()
		time.Sleep(time.Minute) // 60 passing probes
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if changes > 3 {
			t.Errorf("%d changes for one start and steady passes", changes)
		}
	})
}

func TestShorten(t *testing.T) {
	long := strings.Repeat("é", 300)
	got := shorten(long)
	if len(got) > MaxOutput || !strings.HasSuffix(got, "…") {
		t.Errorf("shorten: %d bytes %q", len(got), got)
	}
	if got := shorten(" a\n\tb  "); got != "a b" {
		t.Errorf("shorten: %q", got)
	}
}

type nopSocket struct{}

func (nopSocket) close() {}

func noSocket(string, func(int, map[string]string)) (socketCloser, error) { return nopSocket{}, nil }

func TestOutputsAreRedacted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{Secrets: []string{"hunter2"}, Checks: []Check{{Name: "api", Type: TypeHTTP, Interval: time.Second, Timeout: time.Second, Failures: 1}}})
		h.probe.set("api", false, "HTTP 401: token hunter2 refused by https://user:pw@example.org/")
		h.m.Observe(testID, true, 1, time.Now())
		s := h.expect(Pending, false)
		if strings.Contains(s.LastFailure, "hunter2") || strings.Contains(s.Checks[0].Output, "hunter2") || strings.Contains(s.LastFailure, "user:pw") {
			t.Errorf("secret kept: %q / %q", s.LastFailure, s.Checks[0].Output)
		}
	})
}

// TestReconfigureWhileOnChangeAsks: checks added to a running instance
// (plugs.hcl gains a check block) are announced to OnChange, which asks
// the Manager for the status, as the daemon does to publish it: Configure
// returns (it held the Manager's lock through the announcement, and the
// daemon's reconcile, API and stop hung on it).
func TestReconfigureWhileOnChangeAsks(t *testing.T) {
	probe := newScripted()
	probe.set("a", true, "")
	var m *Manager
	m = New(Options{StateDir: t.TempDir(), Prober: probe, OnChange: func(id ID) { m.Status(id) }})
	defer m.Close()
	if err := m.Configure(testID, Config{}); err != nil {
		t.Fatal(err)
	}
	m.Observe(testID, true, 1, time.Now())
	done := make(chan error, 1)
	go func() {
		done <- m.Configure(testID, Config{Checks: []Check{{Name: "a", Type: TypeHTTP, Interval: time.Second, Timeout: time.Second, Failures: 1}}})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Configure of a running instance's new checks did not return: deadlocked on its announcement")
	}
	if s, ok := m.Status(testID); !ok || len(s.Checks) != 1 {
		t.Errorf("status after the new check: %+v %v", s, ok)
	}
}
