package runner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile"
	"github.com/plugs-dev/plugs/reconcile/reconciletest"
)

const benchInstances = 1000

// BenchmarkBareForkExec1000 is the baseline of BenchmarkStart1000: what a
// minimal Go program pays to fork/exec 1,000 `sleep` processes, one after
// the other, set up as the runner sets them up: the name resolved in PATH
// (exec.Command), the same environment (the runner's plus the PLUGS_*
// variables and the spec's env), stdin on /dev/null, stdout and stderr on a
// fresh pipe whose write end the parent closes. It creates no files, forks
// from any thread, and sets neither a process group nor Pdeathsig. The
// processes are killed and reaped untimed.
func BenchmarkBareForkExec1000(b *testing.B) {
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		bare := newBareStarter(b)
		cpu0 := selfCPU()
		b.StartTimer()
		bare.start(b, benchInstances)
		b.StopTimer()
		cpu += selfCPU() - cpu0
		bare.close()
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms")
}

// BenchmarkStart1000 starts 1,000 `sleep` instances through the runner,
// one after the other, on a fresh state directory: each Start makes the
// instance directory, writes config.json, sets up the output pipe and
// spawns; instance.json and output.log are written by the instance's
// goroutine after Start returns. Stopping them is untimed.
func BenchmarkStart1000(b *testing.B) {
	benchStart(b, 1)
}

// BenchmarkStart1000Parallel8 starts them as reconcile.Apply does by
// default: 8 in flight.
func BenchmarkStart1000Parallel8(b *testing.B) {
	benchStart(b, reconcile.DefaultParallelism)
}

// BenchmarkStart1000VsBare interleaves the bare baseline and the runner,
// in rounds of 100 starts each, until each has started 1,000, and reports
// the runner's figures as multiples of the baseline's: on a shared
// machine, load that comes and goes between separate benchmarks would
// otherwise decide the ratio. The runner starts them one at a time and 8
// at a time on a fresh state directory (every file created), and 8 at a
// time on a warm one, as a restarted daemon does (the instance directories,
// config.json and output.log are there from the previous daemon). The
// file work a start leaves for after the pause (housekeep.go) is done
// between rounds, untimed; later-ms is how long it took.
func BenchmarkStart1000VsBare(b *testing.B) {
	const round = 100
	var bare, serial, par, warm, later time.Duration
	for b.Loop() {
		b.StopTimer()
		bs := newBareStarter(b)
		rs, ss, _ := newBenchRunner(b, "")
		rp, sp, _ := newBenchRunner(b, "")
		warmDir := b.TempDir()
		rw, sw, _ := newBenchRunner(b, warmDir)
		startAll(b, rw, sw, reconcile.DefaultParallelism)
		rw.Close(context.Background())
		rw, sw, _ = newBenchRunner(b, warmDir)
		for i := 0; i < benchInstances; i += round {
			bare += timed(func() { bs.start(b, round) })
			serial += timed(func() { startAll(b, rs, ss[i:i+round], 1) })
			later += settle(b, rs)
			par += timed(func() { startAll(b, rp, sp[i:i+round], reconcile.DefaultParallelism) })
			later += settle(b, rp)
			warm += timed(func() { startAll(b, rw, sw[i:i+round], reconcile.DefaultParallelism) })
			later += settle(b, rw)
		}
		bs.close()
		for _, r := range []*Runner{rs, rp, rw} {
			r.Close(context.Background())
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(bare.Milliseconds())/float64(b.N), "bare-ms")
	b.ReportMetric(float64(serial)/float64(bare), "x-bare-serial")
	b.ReportMetric(float64(par)/float64(bare), "x-bare-par8")
	b.ReportMetric(float64(warm)/float64(bare), "x-bare-warm-par8")
	b.ReportMetric(float64(later.Milliseconds())/float64(b.N), "later-ms")
}

// settle waits, untimed, until r's housekeeper has done the file work its
// starts left for after the pause (housekeep.go), so that it neither runs
// in the next round's time nor in the baseline's, and returns how long
// that work took after the pause.
func settle(b *testing.B, r *Runner) time.Duration {
	t0 := time.Now()
	for range 2000 {
		r.housekeep.mu.Lock()
		idle := !r.housekeep.running
		r.housekeep.mu.Unlock()
		if idle {
			return max(0, time.Since(t0)-housekeepQuiet)
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.Fatal("the housekeeper never finished")
	return 0
}

func timed(f func()) time.Duration {
	t0 := time.Now()
	f()
	return time.Since(t0)
}

// bareStarter is the baseline: exec.Command with the runner's setup.
type bareStarter struct {
	env     []string
	devNull *os.File
	cmds    []*exec.Cmd
	pipes   []*os.File
}

func newBareStarter(b *testing.B) *bareStarter {
	if _, err := exec.LookPath("sleep"); err != nil {
		b.Skip(err)
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		b.Fatal(err)
	}
	env := append(os.Environ(), "PLUGS_TEST=1", "PLUGS_CONFIG="+filepath.Join(b.TempDir(), "config.json"),
		"PLUGS_PLUG=p0", "PLUGS_INSTANCE=i0")
	return &bareStarter{env: env, devNull: devNull}
}

// start starts n processes.
func (s *bareStarter) start(b *testing.B, n int) {
	for range n {
		pr, pw, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		c := exec.Command("sleep", "600")
		c.Env, c.Stdin, c.Stdout, c.Stderr = s.env, s.devNull, pw, pw
		err = c.Start()
		pw.Close()
		if err != nil {
			pr.Close()
			b.Fatal(err)
		}
		s.cmds, s.pipes = append(s.cmds, c), append(s.pipes, pr)
	}
}

// stop sends SIGTERM to every process, then waits for each, as a bare
// supervisor's stop does.
func (s *bareStarter) stop() {
	for _, c := range s.cmds {
		c.Process.Signal(syscall.SIGTERM)
	}
	for i, c := range s.cmds {
		c.Wait()
		s.pipes[i].Close()
	}
	s.cmds, s.pipes = nil, nil
	s.devNull.Close()
}

func (s *bareStarter) close() {
	for i, c := range s.cmds {
		c.Process.Kill()
		c.Wait()
		s.pipes[i].Close()
	}
	s.devNull.Close()
}

// benchStart reports, besides the time to start, the supervisor's CPU
// time per 1,000 starts ("cpu-ms"), counted until every instance's
// instance.json is written: unlike wall time, it hardly depends on what
// else the machine runs.
func benchStart(b *testing.B, parallel int) {
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		r, specs, persisted := newBenchRunner(b, "")
		cpu0 := selfCPU()
		b.StartTimer()
		startAll(b, r, specs, parallel)
		b.StopTimer()
		persisted.Wait()
		cpu += selfCPU() - cpu0
		r.Close(context.Background())
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms")
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// newBenchRunner returns a runner on stateDir (a fresh one when empty),
// 1,000 `sleep` specs, and a WaitGroup that is done once each of them has
// been persisted as running.
func newBenchRunner(b *testing.B, stateDir string) (*Runner, []instance.Spec, *sync.WaitGroup) {
	if stateDir == "" {
		stateDir = b.TempDir()
	}
	var persisted sync.WaitGroup
	persisted.Add(benchInstances)
	var mu sync.Mutex
	seen := map[instance.ID]bool{}
	r, err := New(Options{StateDir: stateDir, Observer: func(st instance.Status) {
		mu.Lock()
		defer mu.Unlock()
		if st.State == instance.StateRunning && !seen[st.ID] {
			seen[st.ID] = true
			persisted.Done()
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	dir := filepath.Join(stateDir, "work")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	specs := make([]instance.Spec, benchInstances)
	for i := range specs {
		specs[i] = reconciletest.Spec(dir, "p"+strconv.Itoa(i%10), "i"+strconv.Itoa(i), "1")
		specs[i].Command = []string{"sleep", "600"}
	}
	return r, specs, &persisted
}

// startAll starts specs on r, parallel at a time.
func startAll(b *testing.B, r *Runner, specs []instance.Spec, parallel int) {
	ctx := context.Background()
	work := make(chan instance.Spec)
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
}

// BenchmarkRestartLatency measures SIGKILL of a child → its replacement
// running. Every run counts as stable (reset_after 1ns), so each kill is a
// first crash, which the policy restarts at once.
func BenchmarkRestartLatency(b *testing.B) {
	running := make(chan int, 16)
	r, err := New(Options{StateDir: b.TempDir(), Observer: func(st instance.Status) {
		if st.State == instance.StateRunning {
			running <- st.PID
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	s := reconciletest.Spec(b.TempDir(), "k", "default", "1")
	s.Restart = instance.RestartPolicy{ResetAfter: time.Nanosecond}
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
// supervisor's resident memory per instance and its CPU while idle, and,
// at the end of the idle window after a GC, what the runner holds per
// instance: goroutines ("goroutines/instance", the runner's own, the
// process's goroutines before New subtracted), goroutine stack bytes and
// live heap bytes (runtime/metrics, the same before New subtracted).
// RUNNER_PROFILE=DIR writes heap.pprof (every allocation sampled) and
// goroutine.pprof there; RUNNER_GCS=N runs N GCs before the figures are
// read (default 2: each GC halves an oversized stack at most once);
// RUNNER_DEBUG=1 logs the runtime's starting stack size and the stack
// bytes the last GC scanned (in use).
func BenchmarkIdle1000(b *testing.B) {
	idle := 2 * time.Second
	if v := os.Getenv("RUNNER_IDLE"); v != "" {
		var err error
		if idle, err = time.ParseDuration(v); err != nil {
			b.Fatal(err)
		}
	}
	if os.Getenv("RUNNER_PROFILE") != "" {
		defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1 // every allocation: the profile's per-instance bytes are exact
	}
	for b.Loop() {
		runtime.GC()
		debug.FreeOSMemory()
		rss0 := rssKiB(b)
		m0 := memFigures()
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
		for range idleGCs() {
			runtime.GC()
		}
		m1 := memFigures()
		if os.Getenv("RUNNER_DEBUG") != "" {
			ss := []metrics.Sample{{Name: "/gc/stack/starting-size:bytes"}, {Name: "/gc/scan/stack:bytes"}}
			metrics.Read(ss)
			b.Logf("starting %d scanned %d", ss[0].Value.Uint64(), ss[1].Value.Uint64())
		}
		if dir := os.Getenv("RUNNER_PROFILE"); dir != "" {
			writeProfiles(b, dir)
		}
		cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
		b.ReportMetric(float64(rss1-rss0)/benchInstances, "KiB/instance")
		b.ReportMetric(float64(cpu.Microseconds())/idle.Seconds(), "idle-cpu-µs/s")
		b.ReportMetric(float64(m1.goroutines-m0.goroutines)/benchInstances, "goroutines/instance")
		b.ReportMetric(float64(m1.stacks-m0.stacks)/benchInstances, "stack-B/instance")
		b.ReportMetric(float64(m1.heap-m0.heap)/benchInstances, "heap-B/instance")
		r.Close(context.Background())
	}
}

func idleGCs() int {
	n, err := strconv.Atoi(os.Getenv("RUNNER_GCS"))
	if err != nil {
		return 2
	}
	return n
}

// memFigure is the process's goroutines, goroutine stack bytes and live
// heap bytes (as of the last GC).
type memFigure struct{ goroutines, stacks, heap uint64 }

func memFigures() memFigure {
	s := []metrics.Sample{
		{Name: "/sched/goroutines:goroutines"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/gc/heap/live:bytes"},
	}
	metrics.Read(s)
	return memFigure{s[0].Value.Uint64(), s[1].Value.Uint64(), s[2].Value.Uint64()}
}

func writeProfiles(b *testing.B, dir string) {
	for _, name := range []string{"heap", "goroutine"} {
		f, err := os.Create(filepath.Join(dir, name+".pprof"))
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkObserve1000 is one Observe of 1,000 running `sleep` instances
// (metrics scrapes, status and the dashboard call it); run it with
// -benchmem.
func BenchmarkObserve1000(b *testing.B) {
	r, specs, persisted := newBenchRunner(b, "")
	defer r.Close(context.Background())
	startAll(b, r, specs, reconcile.DefaultParallelism)
	persisted.Wait()
	b.ReportAllocs()
	for b.Loop() {
		if got := len(r.Observe()); got != benchInstances {
			b.Fatalf("observed %d instances", got)
		}
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

// BenchmarkStrayScan measures CleanupStale's scan of /proc for processes of
// stale instances no instance.json names: one stat and one environ read
// per process on the machine.
func BenchmarkStrayScan(b *testing.B) {
	m, err := newConfigMatcher(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	procs := len(procPIDs())
	for b.Loop() {
		if s := findStrays(m, os.Getpid()); len(s) != 0 {
			b.Fatalf("strays in an empty state dir: %+v", s)
		}
	}
	b.ReportMetric(float64(procs), "procs")
}

// BenchmarkClose1000 stops 1,000 running `sleep` instances with Close, as
// a clean daemon stop does (8 at a time per level is Apply's; Close stops a
// whole level at once): stop signal, the exit, and the search for
// processes that left each instance's group.
func BenchmarkClose1000(b *testing.B) {
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		r, specs, persisted := newBenchRunner(b, "")
		startAll(b, r, specs, reconcile.DefaultParallelism)
		persisted.Wait()
		b.StartTimer()
		total += timed(func() { r.Close(context.Background()) })
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "close-ms")
}

// BenchmarkClose1000VsBare interleaves BenchmarkClose1000 with its
// baseline, a bare stop of the same 1,000 children (SIGTERM to each, then
// wait for each), and reports the runner's time as a multiple of the
// bare one's ("x-bare"), so that the load of a shared machine cancels out.
func BenchmarkClose1000VsBare(b *testing.B) {
	var bare, runner time.Duration
	for b.Loop() {
		b.StopTimer()
		bs := newBareStarter(b)
		bs.start(b, benchInstances)
		time.Sleep(100 * time.Millisecond)
		bare += timed(bs.stop)
		r, specs, persisted := newBenchRunner(b, "")
		startAll(b, r, specs, reconcile.DefaultParallelism)
		persisted.Wait()
		time.Sleep(500 * time.Millisecond) // output.log opened, as in a daemon that ran a while
		runner += timed(func() { r.Close(context.Background()) })
		b.StartTimer()
	}
	b.ReportMetric(float64(bare.Milliseconds())/float64(b.N), "bare-ms")
	b.ReportMetric(float64(runner.Milliseconds())/float64(b.N), "close-ms")
	b.ReportMetric(float64(runner)/float64(bare), "x-bare")
}
