package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/api"
)

// fdLimit is the RLIMIT_NOFILE (soft and hard) the daemon runs under.
const fdLimit = 64

// TestFDLimitAndBrokenPlugin runs the daemon under `ulimit -n 64` with a
// plugin whose executable is missing: the other instances run, and
// `plugs status -o json` reports the failure.
func TestFDLimitAndBrokenPlugin(t *testing.T) {
	dir := t.TempDir()
	id := runID(t)
	t.Cleanup(func() { killMarked(id) })
	files := sleeperFiles(id)
	files["plugs.hcl"] = fmt.Sprintf(`plug "good" {
  source       = "./plugins/sleeper"
  env          = { CHAOS_RUN = %q }
  stop_timeout = "2s"
  instance "i0" {}
  instance "i1" {}
  instance "i2" {}
  instance "i3" {}
  instance "i4" {}
  instance "i5" {}
}
plug "broken" {
  source = "./plugins/broken"
  env    = { CHAOS_RUN = %q }
}
`, id, id)
	files["plugins/broken/plugin.hcl"] = `plugin "broken" {
  version = "1.0.0"
  kind    = "compiled"
  command = ["./not-built-yet"]
}
`
	writeFiles(t, dir, files)
	good := []string{"good/i0", "good/i1", "good/i2", "good/i3", "good/i4", "good/i5"}

	d := startDaemon(t, dir, "sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$@"`, fdLimit), "sh")
	d.waitReady()
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", d.pid()))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("Max open files            %d                   %d", fdLimit, fdLimit); !strings.Contains(string(limits), want) {
		t.Fatalf("the daemon's limits lack %q:\n%s", want, limits)
	}
	d.waitInstances("the good instances running, the broken one failed", func(m map[string]api.InstanceStatus) bool {
		return allRunning(good)(map[string]api.InstanceStatus{
			"good/i0": m["good/i0"], "good/i1": m["good/i1"], "good/i2": m["good/i2"],
			"good/i3": m["good/i3"], "good/i4": m["good/i4"], "good/i5": m["good/i5"],
		}) && m["broken/default"].State == "failed"
	})

	// A few more reconciles (plugs apply) and restarts under the limit.
	for range 3 {
		out, err := exec.Command(plugsBin, "apply", "-f", d.dir+"/plugs.hcl", "--state-dir", d.stateDir).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "broken") {
			t.Errorf("plugs apply: %v\n%s", err, out)
		}
		out, err = exec.Command(plugsBin, "restart", "good/i0", "-f", d.dir+"/plugs.hcl", "--state-dir", d.stateDir).CombinedOutput()
		if err != nil {
			t.Errorf("plugs restart good/i0: %v\n%s", err, out)
		}
	}
	fds, _ := openFDs(d.pid())

	out, err := exec.Command(plugsBin, "status", "-o", "json", "-f", d.dir+"/plugs.hcl", "--state-dir", d.stateDir).Output()
	if err != nil {
		t.Fatalf("plugs status -o json: %v", err)
	}
	var st api.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("plugs status -o json: %v\n%s", err, out)
	}
	insts := byID(&st)
	running := 0
	for _, g := range good {
		if i := insts[g]; i.State == "running" && i.PID > 0 {
			running++
		} else {
			t.Errorf("%s is %s (%s), want running", g, i.State, i.Reason)
		}
	}
	broken := insts["broken/default"]
	if broken.State != "failed" || !strings.Contains(broken.Reason, "not-built-yet") {
		t.Errorf("broken/default is %s with reason %q, want failed, naming the missing executable", broken.State, broken.Reason)
	}
	reconcileErr := ""
	if r := st.Daemon.LastReconcile; r != nil {
		reconcileErr = r.Error
	}
	figure(t, "fd-limit", "under ulimit -n %d: %d/%d good instances running after 3 applies and restarts, daemon at %d fds; broken reported %s: %q; last reconcile error: %q",
		fdLimit, running, len(good), fds, broken.State, broken.Reason, reconcileErr)
	d.stop()
}
