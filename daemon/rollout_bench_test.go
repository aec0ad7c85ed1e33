package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
)

// crashRun is a shell plugin that runs, or (its tree's mode file says
// "crash …") exits 1 at once: a revision that can never be healthy.
const crashRun = `read mode < ./mode
case "$mode" in crash*) exit 1 ;; esac
exec sleep 3600
`

// BenchmarkRevertAfterDeadline measures the time from "deadline missed"
// (a batch of n instances that crash-loop reaches healthy_deadline) to
// "old revision running again" (every instance of the plug spawned on the
// last healthy revision), as the daemon logs it (reverted, after_deadline),
// and the time from apply to the revert seen in status. n is 10 by
// default (PLUGS_BENCH_INSTANCES), all in one batch (max_parallel = n).
func BenchmarkRevertAfterDeadline(b *testing.B) {
	n := benchInstances(b, 10)
	dir := b.TempDir()
	writeFile(b, filepath.Join(dir, "plugins/web/plugin.hcl"), "plugin \"web\" {\n  version = \"1.0.0\"\n  command = [\"sh\", \"./run.sh\"]\n}\n")
	writeFile(b, filepath.Join(dir, "plugins/web/run.sh"), crashRun)
	writeFile(b, filepath.Join(dir, "plugins/web/mode"), "good\n")
	var hcl strings.Builder
	fmt.Fprintf(&hcl, "plug \"web\" {\n  source = \"./plugins/web\"\n  update {\n    max_parallel = %d\n    min_healthy_time = \"100ms\"\n    healthy_deadline = \"300ms\"\n    auto_revert = true\n  }\n", n)
	for i := range n {
		fmt.Fprintf(&hcl, "  instance \"i%03d\" {}\n", i)
	}
	hcl.WriteString("}\n")
	writeFile(b, filepath.Join(dir, "plugs.hcl"), hcl.String())
	var log jsonLog
	c := startDaemon(b, Options{File: filepath.Join(dir, "plugs.hcl"), StateDir: filepath.Join(dir, ".plugs"), NoWatch: true,
		Logger: slog.New(slog.NewJSONHandler(&log, nil))})
	waitStatus(b, c, "the first revision healthy", func(s *api.Status) bool {
		r := rolloutOf(s, "web")
		return r != nil && r.State == api.RolloutHealthy
	})
	var after, total []time.Duration
	b.ResetTimer()
	for i := range b.N {
		writeFile(b, filepath.Join(dir, "plugins/web/mode"), fmt.Sprintf("crash %d\n", i))
		start := time.Now()
		rep, err := c.Apply(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Plan.Rollouts) != 1 {
			b.Fatalf("apply %d started no rollout: %+v", i, rep.Plan)
		}
		waitStatus(b, c, "the revert", func(s *api.Status) bool {
			r := rolloutOf(s, "web")
			return r != nil && r.State == api.RolloutReverted && r.Revision != "" && r.OnTarget == 0 && strings.Contains(r.Reason, "crash")
		})
		total = append(total, time.Since(start))
		var got time.Duration
		for _, rec := range log.records(b) {
			if ns, ok := rec["after_deadline"].(float64); ok && rec["msg"] == "reverted" {
				got = time.Duration(ns) // slog's JSON writes durations in nanoseconds
			}
		}
		after = append(after, got)
	}
	b.StopTimer()
	slices.Sort(after)
	slices.Sort(total)
	b.ReportMetric(float64(after[len(after)/2].Microseconds())/1000, "ms-deadline-to-old-running(median)")
	b.ReportMetric(float64(after[len(after)-1].Microseconds())/1000, "ms-deadline-to-old-running(max)")
	b.ReportMetric(float64(total[len(total)/2].Milliseconds()), "ms-apply-to-reverted(median)")
	b.ReportMetric(float64(n), "instances")
}
