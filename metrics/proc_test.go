package metrics

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/testplugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// startChild starts the test binary as an instance process holding mib MiB,
// in process group pgid (0: its own), and waits until the memory is resident.
func startChild(t *testing.T, mib string, pgid int) *exec.Cmd {
	t.Helper()
	cmd := testplugin.Command("hold", mib)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("child: %q, %v", line, err)
	}
	return cmd
}

func TestUsageOfRealProcessGroup(t *testing.T) {
	leader := startChild(t, "24", 0)
	member := startChild(t, "16", leader.Process.Pid)

	got := readUsage("/proc", []int{leader.Process.Pid, member.Process.Pid})
	lu, mu := got[leader.Process.Pid], got[member.Process.Pid]
	const mib = 1 << 20
	if lu.rssBytes < 40*mib {
		t.Errorf("leader (group) rss = %.0f MiB, want >= 40 (24 + 16 held)", lu.rssBytes/mib)
	}
	if mu.rssBytes < 16*mib || mu.rssBytes >= lu.rssBytes {
		t.Errorf("member rss = %.0f MiB, want >= 16 and below the group's %.0f", mu.rssBytes/mib, lu.rssBytes/mib)
	}
	if lu.cpuSeconds <= 0 || lu.cpuSeconds < mu.cpuSeconds {
		t.Errorf("cpu: group %.2fs, member %.2fs; want group > 0 and >= member", lu.cpuSeconds, mu.cpuSeconds)
	}

	// Through the collector: a running instance gets both series, a vanished pid none.
	src := &fakeSource{instances: []instance.Status{
		{ID: instance.ID{Plug: "p", Instance: "live"}, State: instance.StateRunning, PID: leader.Process.Pid},
		{ID: instance.ID{Plug: "p", Instance: "gone"}, State: instance.StateRunning, PID: deadPID(t)},
	}}
	reg := prometheus.NewRegistry()
	New(reg, src)
	for _, name := range []string{"plugs_instance_cpu_seconds_total", "plugs_instance_resident_memory_bytes"} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
			t.Errorf("%s: %d series, %v; want 1", name, n, err)
		}
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}
