package task

import (
	"context"
	"log/slog"

	"testing"
	"testing/synctest"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/clock/clocktest"

	"github.com/google/go-cmp/cmp"
)

func zero() *time.Duration { var d time.Duration; return &d }

// runTimes returns the wall times (HH:MM) and triggers of the runs so far.
func runTimes(r *fakeRunner) []string {
	var out []string
	for _, run := range r.recorded() {
		out = append(out, run.At.UTC().Format("15:04")+" "+run.Trigger)
	}
	return out
}

// A cron schedule driven by a fake clock fires exactly the expected runs
// across a wall-clock step forward, a step back, and a daemon restart with a
// missed run (Persistent).
func TestCronScheduleAcrossClockStepsAndRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		clock := clocktest.InBubble() // starts at 2000-01-01 00:00 UTC
		r := &fakeRunner{clock: clock}
		cfg := Config{Schedules: []Schedule{{Cron: "*/10 * * * *", UTC: true, Persistent: true, Jitter: zero()}}}
		start := func() *Manager {
			m := NewManager(Options{Runner: r, StateDir: dir, Clock: clock})
			if err := m.Update([]instance.Spec{target("pull", "default", cfg)}); err != nil {
				t.Fatal(err)
			}
			return m
		}
		m := start()
		time.Sleep(25 * time.Minute) // 00:10, 00:20
		synctest.Wait()
		clock.StepWall(time.Hour)    // 00:25 → 01:25: 00:30…01:20 passed unseen; one run for them
		time.Sleep(10 * time.Minute) // one catch-up run within a minute, then 01:30
		synctest.Wait()
		clock.StepWall(-time.Hour) // 01:35 → 00:35: nothing runs again until 01:40
		time.Sleep(70 * time.Minute)
		synctest.Wait() // wall 01:45
		m.Close()

		time.Sleep(30 * time.Minute) // down over 01:50, 02:00, 02:10
		m = start()                  // 02:15: the missed run once, at start
		time.Sleep(10 * time.Minute) // 02:20
		synctest.Wait()
		m.Close()

		want := []string{
			"00:10 schedule", "00:20 schedule",
			"01:26 schedule", "01:30 schedule",
			"01:40 schedule",
			"02:15 missed", "02:20 schedule",
		}
		if diff := cmp.Diff(want, runTimes(r)); diff != "" {
			t.Fatalf("runs (-want +got):\n%s", diff)
		}
	})
}

func TestCronWithoutPersistentSkipsMissedRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		clock := clocktest.InBubble()
		r := &fakeRunner{clock: clock}
		cfg := Config{Schedules: []Schedule{{Cron: "@hourly", UTC: true, Jitter: zero()}}}
		m := NewManager(Options{Runner: r, StateDir: dir, Clock: clock})
		m.Update([]instance.Spec{target("p", "default", cfg)})
		time.Sleep(61 * time.Minute)
		synctest.Wait()
		m.Close()
		time.Sleep(2 * time.Hour) // 02:00 and 03:00 missed
		m = NewManager(Options{Runner: r, StateDir: dir, Clock: clock})
		m.Update([]instance.Spec{target("p", "default", cfg)})
		time.Sleep(time.Hour)
		synctest.Wait()
		m.Close()
		if diff := cmp.Diff([]string{"01:00 schedule", "04:00 schedule"}, runTimes(r)); diff != "" {
			t.Fatalf("runs (-want +got):\n%s", diff)
		}
	})
}

// every measures elapsed time: wall-clock steps neither add nor drop runs.
func TestEveryIgnoresWallClockSteps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := clocktest.InBubble()
		r := &fakeRunner{clock: clock}
		cfg := Config{Schedules: []Schedule{{Every: 5 * time.Minute, Jitter: zero()}}}
		m := NewManager(Options{Runner: r, Clock: clock})
		m.Update([]instance.Spec{target("p", "default", cfg)})
		time.Sleep(12 * time.Minute) // 5, 10
		clock.StepWall(3 * time.Hour)
		time.Sleep(10 * time.Minute) // 15, 20
		clock.StepWall(-5 * time.Hour)
		time.Sleep(10 * time.Minute) // 25, 30
		synctest.Wait()
		m.Close()
		if n := len(r.recorded()); n != 6 {
			t.Fatalf("%d runs in 32 min of every 5m, want 6: %v", n, runTimes(r))
		}
	})
}

func TestEveryPersistentRunsAtStartWhenDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		clock := clocktest.InBubble()
		r := &fakeRunner{clock: clock}
		cfg := Config{Schedules: []Schedule{{Every: time.Hour, Persistent: true, Jitter: zero()}}}
		start := func() *Manager {
			m := NewManager(Options{Runner: r, StateDir: dir, Clock: clock})
			m.Update([]instance.Spec{target("p", "default", cfg)})
			return m
		}
		m := start() // never ran: runs at start
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		m.Close()
		m = start() // 00:30: the next is due at 01:00, not now
		time.Sleep(40 * time.Minute)
		synctest.Wait()
		m.Close()
		time.Sleep(2 * time.Hour)
		m = start() // 03:10: due since 02:00, runs now
		synctest.Wait()
		m.Close()
		if diff := cmp.Diff([]string{"00:00 missed", "01:00 schedule", "03:10 missed"}, runTimes(r)); diff != "" {
			t.Fatalf("runs (-want +got):\n%s", diff)
		}
	})
}

// A run still going when the next is due is skipped and counted; with
// overlap = true it runs.
func TestScheduleSkipsOverlappingRuns(t *testing.T) {
	for _, overlap := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			clock := clocktest.InBubble()
			obs := newFakeObserver()
			r := &fakeRunner{clock: clock}
			r.fn = func(ctx context.Context, _ instance.Spec, run Run) (Outcome, error) {
				time.Sleep(25 * time.Minute) // longer than two periods
				return Outcome{}, nil
			}
			cfg := Config{MaxConcurrent: 4, Schedules: []Schedule{{Every: 10 * time.Minute, Jitter: zero(), Overlap: overlap}}}
			m := NewManager(Options{Runner: r, Clock: clock, Observer: obs})
			m.Update([]instance.Spec{target("p", "default", cfg)})
			time.Sleep(35 * time.Minute) // due at 10, 20, 30
			synctest.Wait()
			m.Close()
			started, skipped := len(r.recorded()), obs.count("p/overlap", true)
			if want := map[bool][2]int{false: {1, 2}, true: {3, 0}}[overlap]; started != want[0] || skipped != want[1] {
				t.Fatalf("overlap=%v: %d started, %d skipped; want %v", overlap, started, skipped, want)
			}
		})
	}
}

func TestJitterIsSmallStableAndSpread(t *testing.T) {
	offsets := map[time.Duration]bool{}
	for i := range 50 {
		p, err := newPlan(Schedule{Cron: "*/5 * * * *"}, ID{Plug: "p", Instance: string(rune('a'+i%26)) + string(rune('a'+i/26))}.String(), time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		if p.offset < 0 || p.offset >= 30*time.Second {
			t.Fatalf("offset %s outside [0, 30s) (a tenth of 5m)", p.offset)
		}
		again, _ := newPlan(Schedule{Cron: "*/5 * * * *"}, ID{Plug: "p", Instance: string(rune('a'+i%26)) + string(rune('a'+i/26))}.String(), time.UTC)
		if again.offset != p.offset {
			t.Fatal("jitter not stable for one instance")
		}
		offsets[p.offset] = true
	}
	if len(offsets) < 40 {
		t.Fatalf("only %d distinct offsets for 50 instances", len(offsets))
	}
	p, _ := newPlan(Schedule{Every: time.Hour, Jitter: zero()}, "x", time.UTC)
	if p.offset != 0 {
		t.Fatal("jitter = 0 not honoured")
	}
}

func TestCronInLocalTimeZone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := clocktest.InBubble()
		r := &fakeRunner{clock: clock}
		berlin := time.FixedZone("CET", 3600)
		cfg := Config{Schedules: []Schedule{{Cron: "0 2 * * *", Jitter: zero()}}} // 02:00 local = 01:00 UTC
		m := NewManager(Options{Runner: r, Clock: clock, Location: berlin})
		m.Update([]instance.Spec{target("p", "default", cfg)})
		time.Sleep(90 * time.Minute)
		synctest.Wait()
		m.Close()
		if diff := cmp.Diff([]string{"01:00 schedule"}, runTimes(r)); diff != "" {
			t.Fatalf("runs (-want +got):\n%s", diff)
		}
	})
}

func TestBadScheduleIsReported(t *testing.T) {
	m := NewManager(Options{Runner: &fakeRunner{}})
	defer m.Close()
	err := m.Update([]instance.Spec{target("p", "default", Config{Schedules: []Schedule{{Cron: "61 * * * *"}}})})
	if err == nil {
		t.Fatal("a bad cron expression was accepted")
	}
	if !m.IsTask("p") {
		t.Fatal("the task is still callable")
	}
}

// A cron expression that names no date (February 30th, April 31st) has no
// next time: robfig/cron's Next returns the zero time, which the scheduler
// took as due with no wait and fired back to back (thousands of runs a
// second). It never fires, missed persistent run included, and the
// scheduler sleeps.
func TestCronThatNeverMatchesNeverFires(t *testing.T) {
	clk := clocktest.New(time.Time{})
	fired := 0
	s := newScheduler(clk, time.UTC, "", func(ID, Schedule, Trigger) bool { fired++; return true }, slog.New(slog.DiscardHandler))
	id := ID{Plug: "p", Instance: "default"}
	never := []Schedule{
		{Cron: "0 0 30 2 *", UTC: true, Jitter: zero()},
		{Cron: "0 0 31 4 *", UTC: true, Persistent: true, Jitter: zero()},
		{Cron: "0 0 30 2 *"}, // the default jitter, in the local zone
	}
	// The persistent one ran before the daemon stopped: its missed run
	// would be due at start if it had a next time.
	s.setLastRun(id, never[1].Key(), clk.Now().Add(-24*time.Hour))
	if err := s.set(id, never); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		wait := s.step()
		if wait <= 0 {
			t.Fatalf("step %d: wait %v: the scheduler would spin", i, wait)
		}
		clk.StepWall(wait)
	}
	if fired != 0 {
		t.Fatalf("a schedule that never matches fired %d times", fired)
	}
	// A schedule beside it still fires on time.
	if err := s.set(id, append(never, Schedule{Cron: "@hourly", UTC: true, Jitter: zero()})); err != nil {
		t.Fatal(err)
	}
	if wait := s.step(); wait <= 0 || wait > maxSleep {
		t.Fatalf("wait %v", wait)
	}
}
