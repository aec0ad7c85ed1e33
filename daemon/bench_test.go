package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchInstances is the instance count of BenchmarkConvergeTenPercent;
// PLUGS_BENCH_INSTANCES overrides it (the README figure uses 1000).
func benchInstances(b *testing.B) int {
	if s := os.Getenv("PLUGS_BENCH_INSTANCES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10 {
			b.Fatalf("PLUGS_BENCH_INSTANCES=%q: want a number >= 10", s)
		}
		return n
	}
	return 200
}

// BenchmarkConvergeTenPercent measures the time from saving a plugs.hcl
// that changes a param of 10% of N instances (real sleep processes, real
// runner, file watcher with a 50ms debounce) to every changed instance
// running its new process. It reports restarted/op, which must equal
// changed/op: nothing else churns.
func BenchmarkConvergeTenPercent(b *testing.B) {
	n := benchInstances(b)
	dir := b.TempDir()
	writeFile(b, filepath.Join(dir, "plugins/sleeper/plugin.hcl"), `plugin "sleeper" {
  version = "1.0.0"
  kind    = "script"
  command = ["sleep", "3600"]
  param "n" {
    type    = string
    default = "0"
  }
}
`)
	file := filepath.Join(dir, "plugs.hcl")
	gen := make([]int, n) // the param value of each instance
	write := func() {
		var sb strings.Builder
		sb.WriteString("plug \"p\" {\n  source = \"./plugins/sleeper\"\n  stop_timeout = \"5s\"\n")
		for i, g := range gen {
			fmt.Fprintf(&sb, "  instance \"i%05d\" { params = { n = \"%d\" } }\n", i, g)
		}
		sb.WriteString("}\n")
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			b.Fatal(err)
		}
	}
	write()
	c := startDaemon(b, Options{File: file, StateDir: filepath.Join(dir, ".plugs"), Debounce: 50 * time.Millisecond})
	pids := func() map[string]int {
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
		return out
	}
	waitStatus(b, c, "every instance running", func(s *Status) bool {
		running := 0
		for _, i := range s.Instances {
			if i.State == "running" {
				running++
			}
		}
		return running == n
	})

	changed := n / 10
	var restarted int
	b.ResetTimer()
	for round := 0; b.Loop(); round++ {
		before := pids()
		want := map[string]bool{}
		for k := range changed {
			i := (round*changed + k) % n
			gen[i]++
			want[fmt.Sprintf("i%05d", i)] = true
		}
		write()
		var after map[string]int
		for {
			after = pids()
			done := len(after) == n
			for name := range want {
				if after[name] == before[name] {
					done = false
					break
				}
			}
			if done {
				break
			}
			time.Sleep(5 * time.Millisecond)
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
	b.StopTimer()
	b.ReportMetric(float64(changed), "changed/op")
	b.ReportMetric(float64(restarted)/float64(b.N), "restarted/op")
}
