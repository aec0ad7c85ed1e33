package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/api"
)

// rolloutPlugs is plug web (4 instances, one replaced at a time, each
// healthy for a second before the next) and an untouched plug.
const rolloutPlugs = `plug "web" {
  source = "./plugins/web"
  env    = { CHAOS_RUN = %q }
  update {
    max_parallel     = 1
    min_healthy_time = "1s"
    healthy_deadline = "4s"
    auto_revert      = true
  }
  instance "a" {}
  instance "b" {}
  instance "c" {}
  instance "d" {}
}

plug "other" {
  source = "./plugins/sleeper"
}
`

// webScript is the web plugin in one of its behaviours: "good" runs,
// "crash" exits 1 after 0.3 s (every time).
func webScript(mode string) string {
	body := "while :; do sleep 1; done"
	if mode == "crash" {
		body = "sleep 0.3; exit 1"
	}
	return fmt.Sprintf("# %s\n%s\n", mode, body)
}

// rolloutSetup writes rolloutPlugs with web in v1 into a new folder and
// returns it with the daemon's command wrapper: a fixed broker port, since
// the rendered configs name it and a new port would make the next daemon's
// desired state another one.
func rolloutSetup(t *testing.T) (dir string, wrapper []string) {
	t.Helper()
	dir = t.TempDir()
	id := runID(t)
	t.Cleanup(func() { killMarked(id) })
	writeFiles(t, dir, map[string]string{
		"plugs.hcl":                  fmt.Sprintf(rolloutPlugs, id),
		"plugins/web/plugin.hcl":     "plugin \"web\" {\n  version = \"1.0.0\"\n  command = [\"sh\", \"./run.sh\", \"" + id + "\"]\n}\n",
		"plugins/web/run.sh":         webScript("v1"),
		"plugins/sleeper/plugin.hcl": "plugin \"sleeper\" {\n  version = \"1.0.0\"\n  command = [\"sh\", \"-c\", \"exec sleep 3600\"]\n}\n",
	})
	return dir, []string{"sh", "-c", `exec "$@" --broker-addr 127.0.0.1:` + freePort(t), "sh"}
}

// newWebRevision makes web's run.sh the script of mode (a new revision)
// and applies it with plugs apply.
func newWebRevision(t *testing.T, d *plugsd, mode string) {
	t.Helper()
	writeFiles(t, d.dir, map[string]string{"plugins/web/run.sh": webScript(mode)})
	c, err := api.Dial(d.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	if _, err := c.Apply(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestDaemonKilledMidRollout SIGKILLs the daemon in the middle of a
// rollout (a healthy one, then one that crashes): the next daemon starts
// the plug on its last healthy revision and rolls out again from there,
// finishing the healthy one and reverting the crashing one, and every
// status it answers with while instances run two revisions says a rollout
// is under way (never half on each revision without saying so).
func TestDaemonKilledMidRollout(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		final string // the rollout's state in the end
	}{
		{"good", api.RolloutHealthy},
		{"crash", api.RolloutReverted},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			dir, wrapper := rolloutSetup(t)
			d := startDaemon(t, dir, wrapper...)
			d.waitReady()
			v1 := waitRollout(t, d, func(r *api.RolloutStatus) bool { return r.State == api.RolloutHealthy }).Revision

			newWebRevision(t, d, tc.mode)
			killed := waitRollout(t, d, func(r *api.RolloutStatus) bool {
				return r.State == api.RolloutProgressing && r.OnTarget >= 1 && (tc.mode == "crash" || r.Batch >= 2)
			})
			v2 := killed.Revision
			d.kill()

			next := startDaemon(t, dir, wrapper...)
			st := next.waitReady()
			r := rolloutOf(st, "web")
			if r == nil || r.State != api.RolloutProgressing || r.Revision != v2 || !strings.Contains(r.Reason, "started over after a daemon restart") {
				t.Fatalf("after the restart: rollout %+v; %s", r, describe(st))
			}
			// Until the verdict, every answer that shows two revisions
			// says a rollout is under way.
			var final *api.RolloutStatus
			waitFor(t, "the rollout to end "+tc.final, func() (bool, string) {
				st := next.status()
				if st == nil {
					return false, "no status"
				}
				revs := map[string]bool{}
				for _, i := range st.Instances {
					if i.Plug == "web" && i.Revision != "" {
						revs[i.Revision] = true
					}
				}
				r := rolloutOf(st, "web")
				if len(revs) > 1 && (r == nil || r.State != api.RolloutProgressing) {
					t.Errorf("web runs %d revisions and status says %+v", len(revs), r)
				}
				final = r
				return r != nil && r.State == tc.final && len(revs) == 1, describe(st)
			})
			switch tc.final {
			case api.RolloutHealthy:
				if final.Revision != v2 || final.OnTarget != 4 {
					t.Errorf("rollout %+v, want %s on every instance", final, v2)
				}
			case api.RolloutReverted:
				if final.Override != v1 || !strings.Contains(final.Reason, "crash loop") {
					t.Errorf("rollout %+v, want a revert to %s", final, v1)
				}
			}
			figure(t, "rollout-"+tc.mode, "SIGKILLed in batch %d of %d (%d of 4 instances on the new revision): the next daemon started over from the last healthy revision and ended it %s",
				killed.Batch, killed.Batches, killed.OnTarget, final.State)
			next.stop()
			if _, err := os.Stat(filepath.Join(dir, ".plugs", "rollouts", "web.json")); err != nil {
				t.Error(err)
			}
		})
	}
}

func rolloutOf(st *api.Status, plug string) *api.RolloutStatus {
	for i := range st.Rollouts {
		if st.Rollouts[i].Plug == plug {
			return &st.Rollouts[i]
		}
	}
	return nil
}

func waitRollout(t *testing.T, d *plugsd, cond func(*api.RolloutStatus) bool) *api.RolloutStatus {
	t.Helper()
	var r *api.RolloutStatus
	waitFor(t, "the rollout", func() (bool, string) {
		st := d.status()
		if st == nil {
			return false, "no status"
		}
		r = rolloutOf(st, "web")
		return r != nil && cond(r), fmt.Sprintf("%+v", r)
	})
	return r
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// TestDaemonKilledMidRolloutThenChanged: the daemon is SIGKILLed in the
// middle of a rollout, and plugs.hcl's plug changes before it runs again.
// The next daemon starts the plug on its last healthy revision and rolls
// the new one out batch by batch (max_parallel 1: never every instance on
// an unproven revision at once), and the rollout cut short is marked
// superseded, not left rolling out.
func TestDaemonKilledMidRolloutThenChanged(t *testing.T) {
	dir, wrapper := rolloutSetup(t)
	d := startDaemon(t, dir, wrapper...)
	d.waitReady()
	waitRollout(t, d, func(r *api.RolloutStatus) bool { return r.State == api.RolloutHealthy })

	newWebRevision(t, d, "v2")
	v2 := waitRollout(t, d, func(r *api.RolloutStatus) bool { return r.State == api.RolloutProgressing && r.OnTarget >= 1 }).Revision
	d.kill()

	writeFiles(t, dir, map[string]string{"plugins/web/run.sh": webScript("v3")})
	next := startDaemon(t, dir, wrapper...)
	st := next.waitReady()
	r := rolloutOf(st, "web")
	if r == nil || r.State != api.RolloutProgressing || r.Revision == v2 || r.Batches < 4 || !strings.Contains(r.Reason, "changed while it was down") {
		t.Fatalf("after the restart with the plug changed: rollout %+v, want v3 rolled out in 4 batches; %s", r, describe(st))
	}
	v3 := r.Revision
	waitFor(t, "the rollout of v3 to end healthy", func() (bool, string) {
		st := next.status()
		if st == nil {
			return false, "no status"
		}
		r := rolloutOf(st, "web")
		// One answer reads the batch and then the instances: the next
		// batch's replace may be under way between the two (one more).
		if r != nil && r.State == api.RolloutProgressing && r.OnTarget > r.Batch+1 {
			t.Errorf("batch %d of %d with %d instances on the new revision: more than max_parallel allows", r.Batch, r.Batches, r.OnTarget)
		}
		return r != nil && r.State == api.RolloutHealthy && r.Revision == v3 && r.OnTarget == 4, describe(st)
	})
	c, err := api.Dial(next.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	h, err := c.History(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h.Entries {
		if e.ID == v2 && e.Verdict != api.RolloutSuperseded {
			t.Errorf("the rollout cut short (%s): verdict %q, want superseded (%s)", v2, e.Verdict, e.Reason)
		}
	}
	next.stop()
}
