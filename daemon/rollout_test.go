package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/internal/mqtttest"
	"github.com/plugs-dev/plugs/mqtt"
)

// rolloutMain is a python plugin whose behaviour its tree's "mode" file
// decides, so that changing the file is a new revision: "good" says
// READY=1 on its notify socket and runs; "never-ready" runs and never says
// it; "crash N" says READY=1, then exits 3 after N seconds.
const rolloutMain = `import os, socket, sys, time
mode = open("mode").read().split()
if mode[0] != "never-ready":
    addr = os.environ["NOTIFY_SOCKET"]
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.connect(addr)
    s.send(b"READY=1")
if mode[0] == "crash":
    time.sleep(float(mode[1]))
    sys.exit(3)
while True:
    time.sleep(1)
`

// rolloutDeployment is plug web with the instances named, a notify check
// (the plug's, so the same for every revision) and an update block.
func rolloutDeployment(update string, instances ...string) string {
	var b strings.Builder
	b.WriteString("plug \"web\" {\n  source = \"./plugins/web\"\n  check \"ready\" {\n    type = \"notify\"\n  }\n")
	fmt.Fprintf(&b, "  update {\n%s  }\n", update)
	b.WriteString("  restart {\n    initial_delay = \"200ms\"\n  }\n")
	for _, i := range instances {
		fmt.Fprintf(&b, "  instance %q {}\n", i)
	}
	b.WriteString("}\n\nplug \"other\" {\n  source = \"./plugins/sleeper\"\n}\n")
	return b.String()
}

// rolloutDir writes the web plugin (in mode), the sleeper and plugs.hcl.
func rolloutDir(t *testing.T, deployment, mode string) (dir string) {
	t.Helper()
	needTools(t, "python3")
	dir, _ = sleeperDir(t, deployment)
	writeFile(t, filepath.Join(dir, "plugins/web/plugin.hcl"), "plugin \"web\" {\n  version = \"1.0.0\"\n  command = [\"python3\", \"main.py\"]\n}\n")
	writeFile(t, filepath.Join(dir, "plugins/web/main.py"), rolloutMain)
	writeFile(t, filepath.Join(dir, "plugins/web/mode"), mode+"\n")
	return dir
}

func rolloutOf(st *api.Status, plug string) *api.RolloutStatus {
	for i := range st.Rollouts {
		if st.Rollouts[i].Plug == plug {
			return &st.Rollouts[i]
		}
	}
	return nil
}

func waitRollout(t *testing.T, c *api.Client, state string) *api.Status {
	t.Helper()
	return waitStatus(t, c, "rollout "+state, func(s *api.Status) bool {
		r := rolloutOf(s, "web")
		return r != nil && r.State == state
	})
}

// newRevision changes the web plugin's mode and asks the daemon to apply.
func newRevision(t *testing.T, c *api.Client, dir, mode string) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "plugins/web/mode"), mode+"\n")
	if _, err := c.Apply(context.Background()); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// revisionsOf maps web's instances to their plugin revisions.
func revisionsOf(st *api.Status) map[string]string {
	out := map[string]string{}
	for _, i := range st.Instances {
		if i.Plug == "web" {
			out[i.Instance] = i.Revision
		}
	}
	return out
}

const fastUpdate = "    max_parallel     = 1\n    min_healthy_time = \"200ms\"\n    healthy_deadline = \"4s\"\n    auto_revert      = true\n"

// TestRolloutNeverReadyReverted: a revision that never becomes ready fails
// its first batch at the deadline; the plug goes back to the revision that
// was healthy (the replaced instance's successor runs it; the others were
// never touched), the failure is reported in status, history, metrics and
// the log, and the failed revision is not tried again until it changes.
func TestRolloutNeverReadyReverted(t *testing.T) {
	dir := rolloutDir(t, rolloutDeployment(fastUpdate, "a", "b", "c"), "good")
	var log jsonLog
	c := startDaemon(t, Options{File: dir + "/plugs.hcl", StateDir: dir + "/.plugs", NoWatch: true,
		Logger: slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	st := waitRollout(t, c, api.RolloutHealthy)
	good := rolloutOf(st, "web").Revision
	before, goodRevs := pids(st), revisionsOf(st)
	host, _ := os.Hostname()
	topic := mqtt.ReconcileTopic(host)
	sub := mqtttest.Subscribe(t, mqtttest.Reader(t, st.Daemon.BrokerURL, filepath.Join(dir, ".plugs")), topic)

	configA := filepath.Join(dir, ".plugs/instances/web/a/config.json")
	goodConfig, err := os.ReadFile(configA)
	if err != nil {
		t.Fatal(err)
	}
	newRevision(t, c, dir, "never-ready")
	st = waitRollout(t, c, api.RolloutProgressing)
	if r := rolloutOf(st, "web"); r.Batches != 3 || r.LastHealthy != good {
		t.Errorf("rollout %+v", r)
	}
	failedAt := time.Now()
	st = waitRollout(t, c, api.RolloutReverted)
	t.Logf("reverted %s after the rollout was seen", time.Since(failedAt).Round(time.Millisecond))
	r := rolloutOf(st, "web")
	if r.Override != good || !strings.Contains(r.Reason, "a: never ready") || !strings.Contains(r.Reason, "reverted to "+good) {
		t.Errorf("rollout %+v", r)
	}
	st = waitStatus(t, c, "the old revision running again", func(s *api.Status) bool {
		for _, i := range []string{"a", "b", "c"} {
			if x := statusOf(s, "web", i); x == nil || x.State != "running" || x.Revision != goodRevs[i] {
				return false
			}
		}
		return true
	})
	after := pids(st)
	if after["web/a"] == before["web/a"] || after["web/b"] != before["web/b"] || after["web/c"] != before["web/c"] || after["other/default"] != before["other/default"] {
		t.Errorf("pids before %v, after %v: only web/a (the first batch) should have been replaced", before, after)
	}
	var msg mqtt.ReconcileMessage
	mqtttest.Await(t, sub, "the revert on the reconcile topic", func(m mqtttest.Message) bool {
		msg = mqtt.ReconcileMessage{}
		return json.Unmarshal(m.Payload, &msg) == nil && len(msg.Rollouts) == 1 && msg.Rollouts[0].Result == api.RolloutReverted
	})
	if o := msg.Rollouts[0]; o.Plug != "web" || o.RevertedTo != good || !strings.Contains(o.Reason, "a: never ready") || o.Revision == good {
		t.Errorf("MQTT rollout %+v", o)
	}
	// The revert ran a's healthy config again, made whole from a record
	// that holds no secret (the broker password of a's own account).
	if got, _ := os.ReadFile(configA); !bytes.Equal(got, goodConfig) {
		t.Errorf("a's config after the revert:\n%s\nbefore the rollout:\n%s", got, goodConfig)
	}
	var cfg struct {
		Broker struct{ Password string } `json:"broker"`
	}
	record, _ := os.ReadFile(filepath.Join(dir, ".plugs/rollouts/web.json"))
	if json.Unmarshal(goodConfig, &cfg); cfg.Broker.Password == "" || bytes.Contains(record, []byte(cfg.Broker.Password)) {
		t.Errorf("the rollout record holds the broker password %q (or the config has none)", cfg.Broker.Password)
	}
	if n := count(log.records(t), "rollout failed"); n != 1 {
		t.Errorf("rollout failed logged %d times", n)
	}
	if m := scrape(t, st.Daemon.MetricsAddr); !strings.Contains(m, `plugs_rollouts_total{result="reverted"} 1`) {
		t.Errorf("metrics:\n%s", grepLines(m, "plugs_rollouts_total"))
	}
	h, err := c.History(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Entries) != 2 || h.Entries[0].Verdict != api.RolloutFailed || !strings.Contains(h.Entries[0].Reason, "never ready") ||
		h.Entries[1].ID != good || h.Entries[1].Verdict != api.RolloutHealthy || !h.Entries[1].Runs || !h.Entries[1].LastHealthy {
		t.Errorf("history %+v", h.Entries)
	}
	// A plug without an update block, and a name plugs.hcl does not declare,
	// are told apart.
	for plug, want := range map[string]string{"other": "only plugs with an update {} block", "nosuch": "runs no instance here"} {
		if _, err := c.History(context.Background(), plug); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("history of %s: %v, want an error saying %q", plug, err, want)
		}
		if _, err := c.Rollback(context.Background(), api.RollbackRequest{Plug: plug}); err == nil ||
			(plug == "nosuch") != strings.Contains(err.Error(), "runs no instance here") {
			t.Errorf("rollback of %s: %v", plug, err)
		}
	}

	// No flapping: applying the same desired state again changes nothing.
	if _, err := c.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	st, _ = c.Status(context.Background())
	if again := pids(st); !maps.Equal(again, after) || rolloutOf(st, "web").State != api.RolloutReverted {
		t.Errorf("the failed revision was tried again: pids %v then %v, rollout %+v", after, again, rolloutOf(st, "web"))
	}
	p, err := c.Plan(context.Background(), api.PlanRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Empty() || len(p.Rollouts) != 1 || !strings.Contains(p.Rollouts[0].Held, "reverted to "+good) {
		t.Errorf("plan while held: %+v", p)
	}

	// A new desired state ends the hold and rolls out.
	newRevision(t, c, dir, "good\n# fixed")
	st = waitStatus(t, c, "the fixed revision healthy", func(s *api.Status) bool {
		r := rolloutOf(s, "web")
		return r != nil && r.State == api.RolloutHealthy && r.Revision != good
	})
	if m := scrape(t, st.Daemon.MetricsAddr); !strings.Contains(m, `plugs_rollouts_total{result="success"} 2`) {
		t.Errorf("metrics:\n%s", grepLines(m, "plugs_rollouts_total"))
	}
	fixed := rolloutOf(st, "web").Revision

	// plugs rollback --to the first revision (by a prefix of its id): at
	// once, pinned until plugs.hcl changes the plug.
	rep, err := c.Rollback(context.Background(), api.RollbackRequest{Plug: "web", To: good[:6]})
	if err != nil {
		t.Fatal(err)
	}
	if rep.To != good || rep.Replaced != 3 {
		t.Errorf("rollback %+v", rep)
	}
	st, _ = c.Status(context.Background())
	if r := rolloutOf(st, "web"); r.State != api.RolloutPinned || r.Override != good || r.Revision != fixed || !maps.Equal(revisionsOf(st), goodRevs) {
		t.Errorf("after the rollback: rollout %+v, revisions %v", r, revisionsOf(st))
	}
	if _, err := c.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Plan(context.Background(), api.PlanRequest{}); err != nil || !p.Empty() || len(p.Rollouts) != 1 || !strings.Contains(p.Rollouts[0].Held, "rolled back to "+good) {
		t.Errorf("plan while pinned: %+v %v", p, err)
	}
	st, _ = c.Status(context.Background())
	if !maps.Equal(revisionsOf(st), goodRevs) {
		t.Errorf("an apply undid the pin: %v", revisionsOf(st))
	}
	// plugs.hcl changes the plug (a param): the pin ends, and the change
	// rolls out from the pinned revision.
	writeFile(t, dir+"/plugs.hcl", strings.Replace(rolloutDeployment(fastUpdate, "a", "b", "c"), `source = "./plugins/web"`, `source = "./plugins/web"
  env    = { NEXT = "1" }`, 1))
	if _, err := c.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	st = waitStatus(t, c, "the next revision healthy", func(s *api.Status) bool {
		r := rolloutOf(s, "web")
		return r != nil && r.State == api.RolloutHealthy && r.Revision != good && r.Revision != fixed && r.Override == ""
	})
}

// TestRolloutCrashAfterStartReverted: a revision that becomes ready, then
// crashes (sooner than min_healthy_time), fails as a crash loop and is
// reverted.
func TestRolloutCrashAfterStartReverted(t *testing.T) {
	update := "    min_healthy_time = \"1s\"\n    healthy_deadline = \"5s\"\n    auto_revert      = true\n"
	dir := rolloutDir(t, rolloutDeployment(update, "a", "b"), "good")
	c := startDaemon(t, Options{File: dir + "/plugs.hcl", StateDir: dir + "/.plugs", NoWatch: true})
	st := waitRollout(t, c, api.RolloutHealthy)
	good, goodRevs := rolloutOf(st, "web").Revision, revisionsOf(st)

	newRevision(t, c, dir, "crash 0.5")
	st = waitRollout(t, c, api.RolloutReverted)
	if r := rolloutOf(st, "web"); r.Override != good || !strings.Contains(r.Reason, "a: crash loop") {
		t.Errorf("rollout %+v", r)
	}
	waitStatus(t, c, "the old revision running again", func(s *api.Status) bool {
		return maps.Equal(revisionsOf(s), goodRevs) && statusOf(s, "web", "a").State == "running"
	})
}

// TestRolloutHealthyInBatches: a healthy revision is promoted batch by
// batch: never more than max_parallel instances on the new revision that
// have not yet been healthy for min_healthy_time, the instances of later
// batches untouched (same pid) until their turn, the other plug never.
func TestRolloutHealthyInBatches(t *testing.T) {
	update := "    max_parallel     = 2\n    min_healthy_time = \"300ms\"\n    healthy_deadline = \"20s\"\n"
	dir := rolloutDir(t, rolloutDeployment(update, "a", "b", "c", "d", "e"), "good")
	c := startDaemon(t, Options{File: dir + "/plugs.hcl", StateDir: dir + "/.plugs", NoWatch: true})
	st := waitRollout(t, c, api.RolloutHealthy)
	old, oldRevs := rolloutOf(st, "web").Revision, revisionsOf(st)
	before := pids(st)

	p, err := c.Plan(context.Background(), api.PlanRequest{})
	if err != nil || len(p.Rollouts) != 0 {
		t.Fatalf("plan %+v %v", p, err)
	}
	writeFile(t, filepath.Join(dir, "plugins/web/mode"), "good\n# v2\n")
	p, err = c.Plan(context.Background(), api.PlanRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Replace != 5 || len(p.Rollouts) != 1 || p.Rollouts[0].Replaces != 5 || p.Rollouts[0].MaxParallel != 2 || p.Rollouts[0].RevertTo != "" {
		t.Errorf("plan %+v rollouts %+v", p, p.Rollouts)
	}
	if _, err := c.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	firstNew := map[string]time.Time{} // when each instance was first seen on the new revision
	for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st, err = c.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		unproven := 0
		for _, i := range st.Instances {
			if i.Plug != "web" || i.Revision == oldRevs[i.Instance] {
				if i.Plug == "web" && i.PID != before["web/"+i.Instance] && i.PID != 0 {
					t.Errorf("%s restarted on the old revision before its batch", i.Instance)
				}
				continue
			}
			if _, ok := firstNew[i.Instance]; !ok {
				firstNew[i.Instance] = time.Now()
			}
			if i.Health == nil || i.Health.HealthySince.IsZero() || time.Since(i.Health.HealthySince) < 300*time.Millisecond {
				unproven++
			}
		}
		if unproven > 2 {
			t.Fatalf("%d instances on the new revision not yet proven healthy (max_parallel 2): %+v", unproven, st.Instances)
		}
		if r := rolloutOf(st, "web"); r != nil && r.State == api.RolloutHealthy && r.Revision != old {
			break
		}
	}
	if r := rolloutOf(st, "web"); r == nil || r.State != api.RolloutHealthy || r.Revision == old || r.OnTarget != 5 {
		t.Fatalf("rollout %+v", r)
	}
	var times []time.Time
	for _, at := range firstNew {
		times = append(times, at)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	if len(times) != 5 {
		t.Fatalf("seen on the new revision: %v", firstNew)
	}
	// Batches of 2, 2, 1: each begins once the one before has been healthy
	// for 300ms.
	for _, i := range []int{2, 4} {
		if gap := times[i].Sub(times[i-1]); gap < 250*time.Millisecond {
			t.Errorf("batch starting with the %dth instance began %s after the one before (min_healthy_time 300ms): %v", i+1, gap, firstNew)
		}
	}
	if pids(st)["other/default"] != before["other/default"] {
		t.Error("the other plug was restarted")
	}
	if _, err := os.Stat(filepath.Join(dir, ".plugs/rollouts/web.json")); err != nil {
		t.Error(err)
	}
}

// TestRolloutFailedWithoutRevertHolds: without auto_revert a failed
// rollout leaves the plug as it is, half on each revision, says so, and
// does not try the failed revision again; a restarted daemon starts the
// instances on the last healthy revision, not on the failed one.
func TestRolloutFailedWithoutRevertHolds(t *testing.T) {
	update := "    min_healthy_time = \"200ms\"\n    healthy_deadline = \"3s\"\n"
	dir := rolloutDir(t, rolloutDeployment(update, "a", "b"), "good")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	broker := ln.Addr().String() // one port for both daemons: the configs name it
	ln.Close()
	opts := Options{File: dir + "/plugs.hcl", StateDir: dir + "/.plugs", BrokerAddr: broker}
	c, stop := runDaemon(t, opts)
	st := waitRollout(t, c, api.RolloutHealthy)
	good, goodRevs := rolloutOf(st, "web").Revision, revisionsOf(st)

	newRevision(t, c, dir, "never-ready")
	st = waitRollout(t, c, api.RolloutFailed)
	r := rolloutOf(st, "web")
	if r.OnTarget != 1 || r.Instances != 2 || r.Override != "" || !strings.Contains(r.Reason, "a: never ready") || !strings.Contains(r.Reason, "not tried again") {
		t.Errorf("rollout %+v", r)
	}
	revs := revisionsOf(st)
	if revs["a"] == goodRevs["a"] || revs["b"] != goodRevs["b"] {
		t.Errorf("revisions %v, want a on the new one and b on the old %v", revs, goodRevs)
	}
	before := pids(st)
	if _, err := c.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	st, _ = c.Status(context.Background())
	if !maps.Equal(pids(st), before) {
		t.Errorf("the failed revision was tried again: pids %v then %v", before, pids(st))
	}
	if m := scrape(t, st.Daemon.MetricsAddr); !strings.Contains(m, `plugs_rollouts_total{result="failed"} 1`) {
		t.Errorf("metrics:\n%s", grepLines(m, "plugs_rollouts_total"))
	}
	stop()

	c, _ = runDaemon(t, opts)
	st = waitStatus(t, c, "both on the last healthy revision", func(s *api.Status) bool {
		return maps.Equal(revisionsOf(s), goodRevs) && statusOf(s, "web", "a").State == "running"
	})
	if r := rolloutOf(st, "web"); r == nil || r.State != api.RolloutFailed || r.LastHealthy != good {
		t.Errorf("after a restart: rollout %+v", r)
	}
}

// TestRolloutRevertThatFailsIsSaid: the last healthy revision's tree is
// gone from the store when a new revision fails: the revert cannot start,
// and status says the rollout failed and the revert too, not "reverted".
func TestRolloutRevertThatFailsIsSaid(t *testing.T) {
	update := "    min_healthy_time = \"1s\"\n    healthy_deadline = \"5s\"\n    auto_revert      = true\n"
	dir := rolloutDir(t, rolloutDeployment(update, "a"), "good")
	c := startDaemon(t, Options{File: dir + "/plugs.hcl", StateDir: dir + "/.plugs", NoWatch: true})
	st := waitRollout(t, c, api.RolloutHealthy)
	tree := filepath.Join(dir, ".plugs/plugins/web", revisionsOf(st)["a"])
	if _, err := os.Stat(tree); err != nil {
		t.Fatalf("the healthy revision's tree: %v", err)
	}
	_ = filepath.Walk(tree, func(p string, _ os.FileInfo, _ error) error { return os.Chmod(p, 0o755) }) // the store's trees are read-only
	if err := os.RemoveAll(tree); err != nil {
		t.Fatal(err)
	}

	newRevision(t, c, dir, "crash 0.5")
	st = waitRollout(t, c, api.RolloutFailed)
	r := rolloutOf(st, "web")
	if r.Override != "" || !strings.Contains(r.Reason, "a: crash loop") || !strings.Contains(r.Reason, "the revert to") || !strings.Contains(r.Reason, "failed too") {
		t.Errorf("rollout after a revert that could not start: %+v, want failed, and the revert's failure said", r)
	}
}
