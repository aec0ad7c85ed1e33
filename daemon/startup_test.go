package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/runner"
)

// TestStartStopsWhatAKilledDaemonLeft: a process a killed daemon left
// (recorded as running in instance.json, outside the new daemon's tree) is
// stopped while the new daemon starts, and the instance it belonged to
// runs again, its instance.json naming the new process: the cleanup runs
// beside the start-up, and no start writes a file before it is done.
func TestStartStopsWhatAKilledDaemonLeft(t *testing.T) {
	dir := t.TempDir()
	for name, content := range sleeperPlugin {
		writeFile(t, dir+"/"+name, content)
	}
	writeFile(t, dir+"/plugs.hcl", sleeperDeployment(map[string]string{"a": "1s"}))
	stateDir := dir + "/.plugs"
	instDir := runner.InstanceDir(stateDir, instance.ID{Plug: "a", Instance: "default"})
	if err := os.MkdirAll(instDir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The stray: a sleep in a session of its own, orphaned to init, with
	// the environment every process of the instance inherits.
	sh := exec.Command("sh", "-c", "setsid sleep 600 >/dev/null 2>&1 </dev/null & echo $!")
	sh.Env = append(os.Environ(), "PLUGS_CONFIG="+filepath.Join(instDir, "config.json"))
	out, err := sh.Output()
	if err != nil {
		t.Fatal(err)
	}
	stray, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("kill", "-KILL", strconv.Itoa(stray)).Run() })
	start := procStartTime(t, stray)
	b, _ := json.Marshal(runner.InstanceFile{Plug: "a", Instance: "default", PID: stray, PIDStartTime: start, State: "running", Since: time.Now()})
	writeFile(t, filepath.Join(instDir, "instance.json"), string(b))

	c := startDaemon(t, Options{File: dir + "/plugs.hcl", StateDir: stateDir})
	st := waitStatus(t, c, "a running", func(s *api.Status) bool {
		i := statusOf(s, "a", "default")
		return i != nil && i.State == "running" && i.PID > 0
	})
	if alive(stray) {
		t.Errorf("the stray (pid %d) outlived the new daemon's start", stray)
	}
	pid := statusOf(st, "a", "default").PID
	for range 100 { // the file follows the status
		f, err := runner.ReadInstanceFile(filepath.Join(instDir, "instance.json"))
		if err == nil && f.State == "running" && f.PID == pid {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	f, err := runner.ReadInstanceFile(filepath.Join(instDir, "instance.json"))
	t.Fatalf("instance.json = %+v (%v), want running with pid %d", f, err, pid)
}

// procStartTime is field 22 of /proc/<pid>/stat.
func procStartTime(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	v, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
