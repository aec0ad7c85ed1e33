package runner

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/plugs-dev/plugs/instance"
)

// BenchmarkCleanupStale1000: what a daemon does at start after its
// predecessor was SIGKILLed with 1,000 instances running, whose processes
// died with it (their parent-death signal): 1,000 instance.json files
// that say running, with pids that no longer exist.
func BenchmarkCleanupStale1000(b *testing.B) {
	stateDir := b.TempDir()
	write := func() {
		for i := range 1000 {
			id := instance.ID{Plug: "p" + strconv.Itoa(i), Instance: "default"}
			dir := InstanceDir(stateDir, id)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				b.Fatal(err)
			}
			// A pid above the kernel's default pid_max: never a live process.
			f := &InstanceFile{Plug: id.Plug, Instance: id.Instance, State: "running", PID: 4_000_000 + i, PIDStartTime: 12345}
			if err := writeInstanceFile(filepath.Join(dir, "instance.json"), f, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	log := slog.New(slog.DiscardHandler)
	for b.Loop() {
		b.StopTimer()
		write()
		b.StartTimer()
		if err := CleanupStale(stateDir, log); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(procPIDs())), "procs")
}
