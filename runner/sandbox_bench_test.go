package runner

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/sandbox"
)

// BenchmarkStart1000Sandboxed starts 1,000 `sleep` instances with the
// sandbox (the shim: cgroup join, Landlock, rlimits, no_new_privs, then
// exec; a cgroup per instance; as root, user = "root" so that no user is
// created) and 1,000 without, in the same run, interleaved in rounds of
// 100 at 8 at a time, and reports both and their ratio.
func BenchmarkStart1000Sandboxed(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root (cgroups)")
	}
	const round = 100
	var plain, boxed time.Duration
	for b.Loop() {
		b.StopTimer()
		state, _ := os.MkdirTemp("", "bench-sandbox-")
		sb, err := sandbox.New(sandbox.Options{StateDir: state})
		if err != nil {
			b.Fatal(err)
		}
		rp, err := New(Options{StateDir: state + "/plain"})
		if err != nil {
			b.Fatal(err)
		}
		rs, err := New(Options{StateDir: state + "/boxed", Sandbox: sb})
		if err != nil {
			b.Fatal(err)
		}
		specs := func(prefix string) []instance.Spec {
			out := make([]instance.Spec, benchInstances)
			for i := range out {
				s := fakeSpec(fmt.Sprintf("%s%d", prefix, i), "default", "")
				s.Command, s.Env, s.User, s.Dir = []string{"sleep", "3600"}, nil, "root", "/"
				out[i] = s
			}
			return out
		}
		sp, ss := specs("p"), specs("s")
		for i := 0; i < benchInstances; i += round {
			plain += timed(func() { startAll(b, rp, sp[i:i+round], reconcile.DefaultParallelism) })
			boxed += timed(func() { startAll(b, rs, ss[i:i+round], reconcile.DefaultParallelism) })
		}
		rp.Close(context.Background())
		rs.Close(context.Background())
		if err := sb.Close(); err != nil {
			b.Error(err)
		}
		os.RemoveAll(state)
		b.StartTimer()
	}
	b.ReportMetric(float64(plain.Milliseconds())/float64(b.N), "plain-ms")
	b.ReportMetric(float64(boxed.Milliseconds())/float64(b.N), "sandboxed-ms")
	b.ReportMetric(float64(boxed)/float64(plain), "x-plain")
}
