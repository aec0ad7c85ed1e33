package runner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/reconcile/reconciletest"
)

const benchInstances = 1000

// BenchmarkBareForkExec1000 is the baseline of BenchmarkStart1000: a bare
// os/exec start of 1,000 `sleep` processes (killed and reaped untimed).
func BenchmarkBareForkExec1000(b *testing.B) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		cmds := make([]*exec.Cmd, benchInstances)
		for i := range cmds {
			cmds[i] = exec.Command(sleep, "600")
			if err := cmds[i].Start(); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
		b.StartTimer()
	}
}

// BenchmarkStart1000 starts 1,000 `sleep` instances through the runner,
// one after the other (config.json, instance.json, output pipe, spawn),
// then stops them untimed.
func BenchmarkStart1000(b *testing.B) {
	benchStart(b, 1)
}

// BenchmarkStart1000Parallel8 starts them as reconcile.Apply does by
// default: 8 in flight.
func BenchmarkStart1000Parallel8(b *testing.B) {
	benchStart(b, reconcile.DefaultParallelism)
}

func benchStart(b *testing.B, parallel int) {
	r, err := New(Options{StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	specs := make([]reconcile.InstanceSpec, benchInstances)
	for i := range specs {
		specs[i] = reconciletest.Spec(b.TempDir(), "p"+strconv.Itoa(i%10), "i"+strconv.Itoa(i), "1")
		specs[i].Command = []string{"sleep", "600"}
	}
	ctx := context.Background()
	for b.Loop() {
		work := make(chan reconcile.InstanceSpec)
		errs := make(chan error, parallel)
		for range parallel {
			go func() {
				var err error
				for s := range work {
					if e := r.Start(ctx, s); e != nil && err == nil {
						err = e
					}
				}
				errs <- err
			}()
		}
		for _, s := range specs {
			work <- s
		}
		close(work)
		for range parallel {
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		for _, s := range specs {
			r.Stop(ctx, s.ID)
		}
		b.StartTimer()
	}
}

// BenchmarkRestartLatency measures SIGKILL of a child → its replacement
// running, with the smallest backoff delay.
func BenchmarkRestartLatency(b *testing.B) {
	running := make(chan int, 16)
	r, err := New(Options{StateDir: b.TempDir(), Observer: func(st reconcile.InstanceStatus) {
		if st.State == reconcile.StateRunning {
			running <- st.PID
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	s := reconciletest.Spec(b.TempDir(), "k", "default", "1")
	s.Restart = reconcile.RestartPolicy{InitialDelay: time.Nanosecond, ResetAfter: time.Nanosecond}
	if err := r.Start(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	pid := <-running
	for b.Loop() {
		syscall.Kill(pid, syscall.SIGKILL)
		pid = <-running
	}
}

// BenchmarkIdle1000 runs 1,000 `sleep` instances for RUNNER_IDLE (a Go
// duration, default 2s; 60s for the README figure) and reports the
// supervisor's resident memory per instance and its CPU while idle.
func BenchmarkIdle1000(b *testing.B) {
	idle := 2 * time.Second
	if v := os.Getenv("RUNNER_IDLE"); v != "" {
		var err error
		if idle, err = time.ParseDuration(v); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		runtime.GC()
		debug.FreeOSMemory()
		rss0 := rssKiB(b)
		r, err := New(Options{StateDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		dir := b.TempDir()
		for i := range benchInstances {
			s := reconciletest.Spec(dir, "p"+strconv.Itoa(i%10), "i"+strconv.Itoa(i), "1")
			s.Command = []string{"sleep", "600"}
			if err := r.Start(context.Background(), s); err != nil {
				b.Fatal(err)
			}
		}
		var ru0, ru1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
		time.Sleep(idle)
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		rss1 := rssKiB(b)
		cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
		b.ReportMetric(float64(rss1-rss0)/benchInstances, "KiB/instance")
		b.ReportMetric(float64(cpu.Microseconds())/idle.Seconds(), "idle-cpu-µs/s")
		r.Close(context.Background())
	}
}

func rssKiB(b *testing.B) int {
	st, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kib int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kib)
			return kib
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
