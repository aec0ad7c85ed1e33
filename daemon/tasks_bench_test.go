package daemon

import (
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/runner"
	"github.com/plugs-dev/plugs/task"
)

// BenchmarkTaskExec measures one call of a task through the task manager
// and runner.RunOnce (admission, input file, history write, process group,
// pidfd wait) against a bare fork/exec of the same program in the same
// run: `go test -run '^$' -bench TaskExec -benchtime 200x ./daemon`;
// task-vs-bare runs both in turn and reports their ratio, "x-bare".
func BenchmarkTaskExec(b *testing.B) {
	bin, err := exec.LookPath("true")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("bare", func(b *testing.B) {
		for b.Loop() {
			if err := exec.Command(bin).Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
	state := b.TempDir()
	r, err := runner.New(runner.Options{StateDir: state})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(b.Context())
	m := task.NewManager(task.Options{Runner: taskRunner{r}, StateDir: state})
	defer m.Close()
	cfg := instance.Task{MaxConcurrent: 8}
	if err := m.Update([]instance.Spec{{ID: instance.ID{Plug: "t", Instance: "default"}, Dir: state, Command: []string{bin}, Task: &cfg}}); err != nil {
		b.Fatal(err)
	}
	b.Run("task", func(b *testing.B) {
		for b.Loop() {
			res, err := m.Exec(b.Context(), task.Request{Plug: "t", Input: []byte("{}")})
			if err != nil || res.Result != task.ResultSuccess {
				b.Fatal(err, res)
			}
		}
	})
	// Both in turn, each iteration: the ratio measured side by side.
	b.Run("task-vs-bare", func(b *testing.B) {
		var bare, call time.Duration
		for b.Loop() {
			t0 := time.Now()
			if err := exec.Command(bin).Run(); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			res, err := m.Exec(b.Context(), task.Request{Plug: "t", Input: []byte("{}")})
			if err != nil || res.Result != task.ResultSuccess {
				b.Fatal(err, res)
			}
			bare, call = bare+t1.Sub(t0), call+time.Since(t1)
		}
		n := float64(b.N)
		b.ReportMetric(float64(bare.Microseconds())/n/1000, "ms-bare")
		b.ReportMetric(float64(call.Microseconds())/n/1000, "ms-task")
		b.ReportMetric(n/call.Seconds(), "calls/s")
		b.ReportMetric(float64(call)/float64(bare), "x-bare")
	})
	b.Run("task-parallel-8", func(b *testing.B) {
		var wg sync.WaitGroup
		n := b.N
		ch := make(chan struct{}, n)
		for range n {
			ch <- struct{}{}
		}
		close(ch)
		b.ResetTimer()
		for range 8 {
			wg.Go(func() {
				for range ch {
					if _, err := m.Exec(b.Context(), task.Request{Plug: "t"}); err != nil {
						b.Error(err)
					}
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})
}
