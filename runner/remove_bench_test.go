package runner

import (
	"context"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// BenchmarkRemove100Of1000 measures what the deletes of a converge cost
// the runner: of 1,000 running `sleep` instances, 100 are removed (Remove:
// stop, then the instance's folder gone) and, for comparison, 100 others
// only stopped (Stop), each 32 at a time as the daemon's apply does
// (DefaultApplyParallelism). The start of the 1,000 and the housekeeping
// after it are untimed.
func BenchmarkRemove100Of1000(b *testing.B) {
	var remove, stop time.Duration
	for b.Loop() {
		b.StopTimer()
		r, specs, persisted := newBenchRunner(b, "")
		startAll(b, r, specs, 8)
		persisted.Wait()
		settle(b, r)
		time.Sleep(300 * time.Millisecond)
		each := func(fn func(context.Context, int) error, from int) time.Duration {
			var g errgroup.Group
			g.SetLimit(32)
			return timed(func() {
				for i := from; i < from+100; i++ {
					g.Go(func() error { return fn(context.Background(), i) })
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
			})
		}
		remove += each(func(ctx context.Context, i int) error { return r.Remove(ctx, specs[i].ID) }, 0)
		stop += each(func(ctx context.Context, i int) error { return r.Stop(ctx, specs[i].ID) }, 500)
		r.Close(context.Background())
		b.StartTimer()
	}
	b.ReportMetric(float64(remove.Microseconds())/1e3/float64(b.N), "remove100-ms")
	b.ReportMetric(float64(stop.Microseconds())/1e3/float64(b.N), "stop100-ms")
}
