package health

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCheckOverhead1000 runs 1,000 instances, each with a tcp check
// every second (against one local listener) and a data check fed a message
// a second, for HEALTH_BENCH_FOR (default 5s), and reports the daemon-side
// CPU per instance per second of the checks. The baseline, measured in the
// same run for the same time just before, is the same 1,000 instances fed
// the same messages with no check configured: "net-µs-CPU/instance/s" is
// what the checks add, "x-baseline" the ratio of the two.
//
//	HEALTH_BENCH_FOR=30s go test -run '^$' -bench CheckOverhead1000 -benchtime 1x ./health
func BenchmarkCheckOverhead1000(b *testing.B) {
	window := 5 * time.Second
	if v := os.Getenv("HEALTH_BENCH_FOR"); v != "" {
		window, _ = time.ParseDuration(v)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	const n = 1000
	checks := Config{Checks: []Check{
		{Name: "port", Type: TypeTCP, Address: l.Addr().String(), Interval: time.Second, Timeout: time.Second, Failures: 1},
		{Name: "fresh", Type: TypeData, Within: 5 * time.Second, Failures: 1},
	}}
	// run configures n instances with cfg, feeds each a data message a
	// second for the window, and returns the process's CPU per instance
	// per second, in µs, and how many instances ended healthy.
	run := func(cfg Config) (float64, int) {
		m := New(Options{StateDir: b.TempDir()})
		for i := range n {
			id := ID{Plug: "p", Instance: fmt.Sprint(i)}
			if err := m.Configure(id, cfg); err != nil {
				b.Fatal(err)
			}
			m.Observe(id, true, 100000+i, time.Now())
		}
		start, cpu0 := time.Now(), cpuTime()
		for time.Since(start) < window {
			for i := range n {
				m.Data(ID{Plug: "p", Instance: fmt.Sprint(i)}, time.Now())
			}
			time.Sleep(time.Second)
		}
		cpu := cpuTime() - cpu0
		elapsed := time.Since(start)
		healthy := 0
		for _, s := range m.Statuses() {
			if s.Health == Healthy {
				healthy++
			}
		}
		m.Close()
		return float64(cpu.Microseconds()) / elapsed.Seconds() / n, healthy
	}
	for range b.N {
		base, _ := run(Config{})
		with, healthy := run(checks)
		b.ReportMetric(with, "µs-CPU/instance/s")
		b.ReportMetric(base, "baseline-µs-CPU/instance/s")
		b.ReportMetric(with-base, "net-µs-CPU/instance/s")
		b.ReportMetric(with/base, "x-baseline")
		b.ReportMetric(float64(healthy), "healthy")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
