package runner

import (
	"context"
	"fmt"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/reconcile/reconciletest"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkForkExecFds: fork+exec+wait of /bin/true from a process holding
// extra close-on-exec descriptors (as the daemon holds ~4 per instance).
func BenchmarkForkExecFds(b *testing.B) {
	for _, extra := range []int{0, 1000, 4000} {
		b.Run(fmt.Sprintf("fds=%d", extra), func(b *testing.B) {
			var files []*os.File
			for range extra {
				f, err := os.Open("/dev/null")
				if err != nil {
					b.Fatal(err)
				}
				files = append(files, f)
			}
			defer func() {
				for _, f := range files {
					f.Close()
				}
			}()
			attr := &os.ProcAttr{Files: []*os.File{nil, nil, nil}}
			b.ResetTimer()
			for range b.N {
				p, err := os.StartProcess("/bin/true", []string{"true"}, attr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Wait(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRestartLatencyN: SIGKILL → replacement running, with others
// `sleep` instances running beside the one killed.
func BenchmarkRestartLatencyN(b *testing.B) {
	for _, others := range []int{0, 999} {
		b.Run(fmt.Sprintf("others=%d", others), func(b *testing.B) {
			running := make(chan int, 16)
			stateDir := b.TempDir()
			r, err := New(Options{StateDir: stateDir, Observer: func(st instance.Status) {
				if st.State == instance.StateRunning && st.ID.Plug == "k" {
					running <- st.PID
				}
			}})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close(context.Background())
			dir := filepath.Join(stateDir, "work")
			os.MkdirAll(dir, 0o700)
			specs := make([]instance.Spec, others)
			for i := range specs {
				specs[i] = reconciletest.Spec(dir, "p"+strconv.Itoa(i%10), "i"+strconv.Itoa(i), "1")
				specs[i].Command = []string{"sleep", "600"}
			}
			startAll(b, r, specs, 8)
			s := reconciletest.Spec(b.TempDir(), "k", "default", "1")
			s.Restart = instance.RestartPolicy{ResetAfter: time.Nanosecond}
			if err := r.Start(context.Background(), s); err != nil {
				b.Fatal(err)
			}
			pid := <-running
			time.Sleep(200 * time.Millisecond)
			b.ResetTimer()
			for range b.N {
				syscall.Kill(pid, syscall.SIGKILL)
				pid = <-running
			}
		})
	}
}

// BenchmarkAdoptedChildrenN: the walk for adopted orphans (adoptedChildren,
// which skips the spawner threads' lists) with 1,000 instances running,
// against reading every thread's list (children of this process), in the
// same run: x-every is how many times dearer the full read is.
func BenchmarkAdoptedChildrenN(b *testing.B) {
	stateDir := b.TempDir()
	r, err := New(Options{StateDir: stateDir})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	dir := filepath.Join(stateDir, "work")
	os.MkdirAll(dir, 0o700)
	specs := make([]instance.Spec, 1000)
	for i := range specs {
		specs[i] = reconciletest.Spec(dir, "p"+strconv.Itoa(i%10), "i"+strconv.Itoa(i), "1")
		specs[i].Command = []string{"sleep", "600"}
	}
	startAll(b, r, specs, 8)
	var skip, every time.Duration
	b.ResetTimer()
	for range b.N {
		t := time.Now()
		if n := len(adoptedChildren()); n != 0 {
			b.Fatalf("%d adopted children, want none", n)
		}
		skip += time.Since(t)
		t = time.Now()
		if n := len(children(os.Getpid())); n < len(specs) {
			b.Fatalf("%d children, want at least %d", n, len(specs))
		}
		every += time.Since(t)
	}
	b.ReportMetric(float64(skip.Microseconds())/float64(b.N), "skip-µs")
	b.ReportMetric(float64(every.Microseconds())/float64(b.N), "every-µs")
	b.ReportMetric(float64(every)/float64(skip), "x-every")
}
