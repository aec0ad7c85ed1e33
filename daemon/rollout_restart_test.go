package daemon

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/instance"
)

// startDaemonOf is startDaemon that also returns the daemon itself: Run's
// steps (open, start, serve), for a test that reaches inside.
func startDaemonOf(t *testing.T, opts Options) (*daemon, *api.Client) {
	t.Helper()
	opts.MetricsAddr = "127.0.0.1:0"
	opts.BrokerAddr = "127.0.0.1:0"
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ready := make(chan struct{})
	opts.Ready = func() { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	dc := make(chan *daemon, 1)
	go func() {
		errc <- func() error {
			d, err := open(ctx, opts)
			if err != nil {
				return err
			}
			dc <- d
			defer d.close()
			if err := d.start(ctx); err != nil {
				return err
			}
			return d.serve(ctx)
		}()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-errc:
		errc <- err
		t.Fatalf("run ended before ready: %v", err)
	}
	c, err := api.Dial(opts.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return <-dc, c
}

// TestRolloutRestartUnseenByChecksNotHealthy: the instance of a batch
// becomes ready, crashes 0.5s later (min_healthy_time 1s) and is restarted
// before the health checks hear of it (the runner's observer is late, as
// under load): the rollout samples a running process on the new revision
// with the health of the one before, healthy for over 1s. That is not a
// healthy batch: no check has passed in the process that runs. The
// rollout fails as a crash loop and is reverted.
//
// The observer is made late deterministically: the test holds the
// rollouts' lock (ro.mu) while the runner's notifier delivers a status of
// the other plug, so the notifier waits in poke and the crash, the
// backoff and the restart of web/a stay undelivered; the rollout's own
// judging needs no ro.mu.
func TestRolloutRestartUnseenByChecksNotHealthy(t *testing.T) {
	update := "    min_healthy_time = \"1s\"\n    healthy_deadline = \"5s\"\n    auto_revert      = true\n"
	dir := rolloutDir(t, rolloutDeployment(update, "a"), "good")
	d, c := startDaemonOf(t, Options{File: dir + "/plugs.hcl", StateDir: dir + "/.plugs", NoWatch: true})
	st := waitRollout(t, c, api.RolloutHealthy)
	good := rolloutOf(st, "web").Revision
	goodRev := revisionsOf(st)["a"]
	a, other := instance.ID{Plug: "web", Instance: "a"}, instance.ID{Plug: "other", Instance: "default"}

	newRevision(t, c, dir, "crash 0.5")
	// Wait until the batch is being judged and web/a's new process is
	// healthy, then hold ro.mu.
	var pid1 int
	var since time.Time
	locked := false
	defer func() {
		if locked {
			d.ro.mu.Unlock()
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); !locked; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("web/a never healthy on the new revision while its batch was judged")
		}
		rs, ok := d.runner.Status(a)
		hs, hok := d.health.status(a)
		// The health read is of the process that runs, and fresh: it
		// crashes 0.5s after it became healthy.
		if !ok || rs.State != instance.StateRunning || rs.Spec.Revision == goodRev || !hok || hs.HealthySince.IsZero() ||
			hs.HealthySince.Before(rs.StartedAt) || time.Since(hs.HealthySince) > 200*time.Millisecond {
			continue
		}
		d.ro.mu.Lock()
		if r := d.ro.live["web"]; r != nil && r.stageStart.After(r.started) {
			locked, pid1, since = true, rs.PID, hs.HealthySince
		} else {
			d.ro.mu.Unlock()
		}
	}
	otherBefore, _ := d.runner.Status(other)
	go func() { _ = d.runner.Restart(context.Background(), other) }() // its statuses: the notifier now waits in poke
	for deadline := time.Now().Add(time.Second); ; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the other plug did not restart")
		}
		if o, _ := d.runner.Status(other); o.State != otherBefore.State || o.PID != otherBefore.PID {
			break
		}
	}
	if rs, _ := d.runner.Status(a); rs.PID != pid1 {
		t.Fatal("precondition: web/a crashed before the notifier was held")
	}

	// web/a crashes at since+0.5s and runs again 200ms later (restart's
	// initial_delay), unseen by the checks.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("web/a did not restart")
		}
		if rs, ok := d.runner.Status(a); ok && rs.State == instance.StateRunning && rs.PID != pid1 {
			break
		}
	}
	if hs, _ := d.health.status(a); !hs.HealthySince.Equal(since) {
		t.Fatalf("precondition: the checks saw the restart (healthy since %v, was %v)", hs.HealthySince, since)
	}
	// Past the moment the rollout judges again (since + min_healthy_time).
	time.Sleep(time.Until(since.Add(1300 * time.Millisecond)))
	d.ro.mu.Unlock()
	locked = false

	st = waitStatus(t, c, "a verdict", func(s *api.Status) bool {
		r := rolloutOf(s, "web")
		return r != nil && (r.State == api.RolloutReverted || r.State == api.RolloutHealthy && r.Revision != good)
	})
	if r := rolloutOf(st, "web"); r.State != api.RolloutReverted || r.Override != good || !strings.Contains(r.Reason, "a: crash loop") {
		t.Errorf("rollout %+v: a revision that crashes 0.5s after start judged healthy (min_healthy_time 1s)", r)
	}
}
