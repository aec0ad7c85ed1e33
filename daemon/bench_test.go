package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
)

// benchInstances is the instance count of the daemon benchmarks;
// PLUGS_BENCH_INSTANCES overrides it (the README figures use 1000).
func benchInstances(b *testing.B, def int) int {
	if s := os.Getenv("PLUGS_BENCH_INSTANCES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10 {
			b.Fatalf("PLUGS_BENCH_INSTANCES=%q: want a number >= 10", s)
		}
		return n
	}
	return def
}

// benchLogger logs to the file named by PLUGS_BENCH_LOG (the "applied" line
// of each reconcile carries the time spent loading, planning and applying),
// else nowhere.
func benchLogger(b *testing.B) *slog.Logger {
	name := os.Getenv("PLUGS_BENCH_LOG")
	if name == "" {
		return slog.New(slog.DiscardHandler)
	}
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// benchDeployment is a folder with a sleeper plugin and a plugs.hcl of one
// plug with len(gen) instances, instance i having param n = gen[i].
type benchDeployment struct {
	b       *testing.B
	file    string
	gen     []int
	comment string // a line of comment ahead of the plug: other bytes, the same meaning
}

// Commands of the sleeper plugin: one that exits at once on SIGTERM, and
// one that takes 200ms to stop, as a plugin flushing its data would (the
// stop signal reaches the whole group: sleep dies, wait returns, the trap
// runs).
const (
	sleepCommand    = `["sleep", "3600"]`
	gracefulCommand = `["sh", "-c", "trap 'sleep 0.2; exit 0' TERM; sleep 3600 & wait"]`
)

func newBenchDeployment(b *testing.B, n int, command string) *benchDeployment {
	dir := b.TempDir()
	writeFile(b, filepath.Join(dir, "plugins/sleeper/plugin.hcl"), `plugin "sleeper" {
  version = "1.0.0"
  kind    = "script"
  command = `+command+`
  param "n" {
    type    = string
    default = "0"
  }
}
`)
	d := &benchDeployment{b: b, file: filepath.Join(dir, "plugs.hcl"), gen: make([]int, n)}
	d.write()
	return d
}

// write saves plugs.hcl as editors do: a temp file renamed over it.
func (d *benchDeployment) write() {
	var sb strings.Builder
	sb.WriteString(d.comment)
	sb.WriteString("plug \"p\" {\n  source = \"./plugins/sleeper\"\n  stop_timeout = \"5s\"\n")
	for i, g := range d.gen {
		fmt.Fprintf(&sb, "  instance \"i%05d\" { params = { n = \"%d\" } }\n", i, g)
	}
	sb.WriteString("}\n")
	tmp := d.file + ".tmp"
	if err := os.WriteFile(tmp, []byte(sb.String()), 0o644); err != nil {
		d.b.Fatal(err)
	}
	if err := os.Rename(tmp, d.file); err != nil {
		d.b.Fatal(err)
	}
}

// runningPIDs returns the pid of every running instance, by instance name,
// and the daemon's last reconcile.
func runningPIDs(b *testing.B, c *api.Client) (map[string]int, *api.ReconcileStatus) {
	st, err := c.Status(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]int{}
	for _, i := range st.Instances {
		if i.State == "running" {
			out[i.Instance] = i.PID
		}
	}
	return out, st.Daemon.LastReconcile
}

// pollEvery is how often the benchmarks ask the daemon's status: a status
// of 1,000 instances costs CPU the daemon competes for.
const pollEvery = 10 * time.Millisecond

// startBenchDaemon starts a daemon on d (50ms debounce, parallelism 0 for
// the default) and waits until every instance runs.
func startBenchDaemon(b *testing.B, d *benchDeployment, parallelism int) *api.Client {
	c := startDaemon(b, Options{File: d.file, StateDir: filepath.Join(filepath.Dir(d.file), ".plugs"),
		Debounce: 50 * time.Millisecond, ApplyParallelism: parallelism, Logger: benchLogger(b)})
	waitStatus(b, c, "every instance running", func(s *api.Status) bool {
		running := 0
		for _, i := range s.Instances {
			if i.State == "running" {
				running++
			}
		}
		return running == len(d.gen)
	})
	return c
}

// BenchmarkConvergeTenPercent measures the time from saving a plugs.hcl
// that changes a param of 10% of N instances (real sleep processes, real
// runner, file watcher with a 50ms debounce) to every changed instance
// running its new process. It reports restarted/op, which must equal
// changed/op: nothing else churns; and reconcile-ms/op, the daemon's own
// time (load, plan, apply) of the reconcile the save caused: the rest of
// ns/op is the file watch, the debounce, and this benchmark's polling. It
// runs plugins that stop at once and plugins that take 200ms to, each with
// reconcile's default apply parallelism and with the daemon's.
func BenchmarkConvergeTenPercent(b *testing.B) {
	for _, stop := range []struct{ name, command string }{{"instant", sleepCommand}, {"200ms", gracefulCommand}} {
		for _, par := range []int{reconcile.DefaultParallelism, DefaultApplyParallelism} {
			b.Run(fmt.Sprintf("stop=%s/parallel=%d", stop.name, par), func(b *testing.B) {
				benchConvergeTenPercent(b, stop.command, par)
			})
		}
	}
}

func benchConvergeTenPercent(b *testing.B, command string, parallelism int) {
	d := newBenchDeployment(b, benchInstances(b, 200), command)
	n := len(d.gen)
	c := startBenchDaemon(b, d, parallelism)

	changed := n / 10
	var restarted int
	var reconciling time.Duration
	for round := 0; b.Loop(); round++ {
		before, _ := runningPIDs(b, c)
		want := map[string]bool{}
		for k := range changed {
			i := (round*changed + k) % n
			d.gen[i]++
			want[fmt.Sprintf("i%05d", i)] = true
		}
		d.write()
		var after map[string]int
		for {
			var last *api.ReconcileStatus
			after, last = runningPIDs(b, c)
			done := len(after) == n
			for name := range want {
				if after[name] == before[name] {
					done = false
					break
				}
			}
			if done {
				reconciling += last.Duration
				break
			}
			time.Sleep(pollEvery)
		}
		for name, pid := range after {
			if pid != before[name] {
				restarted++
				if !want[name] {
					b.Errorf("instance %s restarted though unchanged", name)
				}
			}
		}
	}
	b.ReportMetric(float64(changed), "changed/op")
	b.ReportMetric(float64(restarted)/float64(b.N), "restarted/op")
	b.ReportMetric(float64(reconciling.Milliseconds())/float64(b.N), "reconcile-ms/op")
}

// BenchmarkConvergeNoChange measures the time from saving a plugs.hcl
// whose meaning did not change (a comment edited: other bytes, so not
// skipped as already applied) to the daemon having reconciled it: a load,
// a plan with nothing to do, no restart. It reports restarted/op, which
// must be 0. (A save of the very bytes that run is not reconciled at all:
// TestWatchSkipsWhatApplyApplied.)
func BenchmarkConvergeNoChange(b *testing.B) {
	d := newBenchDeployment(b, benchInstances(b, 100), sleepCommand)
	c := startBenchDaemon(b, d, 0)
	before, _ := runningPIDs(b, c)
	lastAt := func() time.Time {
		st, err := c.Status(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		return st.Daemon.LastReconcile.At
	}
	i := 0
	for b.Loop() {
		i++
		prev := lastAt()
		d.comment = fmt.Sprintf("# save %d\n", i)
		d.write()
		deadline := time.Now().Add(30 * time.Second)
		for lastAt().Equal(prev) {
			if time.Now().After(deadline) {
				b.Fatalf("save %d not reconciled within 30s", i)
			}
			time.Sleep(pollEvery)
		}
	}
	restarted := 0
	after, _ := runningPIDs(b, c)
	for name, pid := range after {
		if pid != before[name] {
			restarted++
		}
	}
	b.ReportMetric(float64(restarted), "restarted")
	if restarted != 0 {
		b.Errorf("%d instances restarted by saving an unchanged plugs.hcl", restarted)
	}
}

// BenchmarkLoad measures the load step of a reconcile on its own: parse
// plugs.hcl and the lock, fetch (all in the store already), verify the
// runnable trees, render every instance's config.
func BenchmarkLoad(b *testing.B) {
	d := newBenchDeployment(b, benchInstances(b, 1000), sleepCommand)
	l := newLoader(filepath.Join(filepath.Dir(d.file), ".plugs"), fetch.Options{}, func(*spec.Deployment) render.BrokerInfo { return render.BrokerInfo{} })
	ctx := context.Background()
	if _, err := l.load(ctx, d.file, nil); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ld, err := l.load(ctx, d.file, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(ld.desired) != len(d.gen) {
			b.Fatalf("%d instances desired, want %d", len(ld.desired), len(d.gen))
		}
	}
}
