package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/task"
)

// TestStartRemovesUndeclaredInstanceDirs: the folder of an instance removed
// from plugs.hcl while the daemon was down (its config.json holds a
// secret) stays while the configuration does not load, and is gone after
// the first start that loads it; folders of declared instances stay.
func TestStartRemovesUndeclaredInstanceDirs(t *testing.T) {
	dir := t.TempDir()
	for name, content := range sleeperPlugin {
		writeFile(t, filepath.Join(dir, name), content)
	}
	stateDir := filepath.Join(dir, ".plugs")
	instances := filepath.Join(stateDir, "instances")
	gonePlug := filepath.Join(instances, "gone", "default", "config.json")
	goneInstance := filepath.Join(instances, "a", "old", "config.json")
	kept := filepath.Join(instances, "a", "default", "output.log")
	writeFile(t, gonePlug, `{"params":{"token":"hunter2"}}`)
	writeFile(t, goneInstance, `{"params":{"token":"hunter3"}}`)
	writeFile(t, kept, "the output of an earlier run\n")
	writeFile(t, filepath.Join(instances, "stray-file"), "not an instance folder\n")

	file := filepath.Join(dir, "plugs.hcl")
	writeFile(t, file, "plug \"a\" {\n  source = \"./plugins/sleeper\"\n  bogus = 1\n}\n")
	opts := Options{File: file, StateDir: stateDir}
	c, stop := runDaemon(t, opts)
	waitStatus(t, c, "the first reconcile failed", func(s *api.Status) bool {
		return s.Daemon.LastReconcile != nil && s.Daemon.LastReconcile.Error != ""
	})
	stop()
	for _, f := range []string{gonePlug, goneInstance, kept} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("a configuration that does not load removed %s: %v", f, err)
		}
	}

	writeFile(t, file, sleeperDeployment(map[string]string{"a": "5s"}))
	c, _ = runDaemon(t, opts)
	waitStatus(t, c, "a running", func(s *api.Status) bool { return len(pids(s)) == 1 })
	for _, f := range []string{gonePlug, filepath.Dir(gonePlug), filepath.Dir(filepath.Dir(gonePlug)), goneInstance, filepath.Dir(goneInstance)} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is still there after a start that loaded plugs.hcl: %v", f, err)
		}
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("the folder of a declared instance lost %s: %v", kept, err)
	}
	if _, err := os.Stat(filepath.Join(instances, "stray-file")); err != nil {
		t.Errorf("a file that is no instance folder was removed: %v", err)
	}
	holding := func(root string) []string {
		var out []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if b, _ := os.ReadFile(p); strings.Contains(string(b), "hunter2") || strings.Contains(string(b), "hunter3") {
					out = append(out, p)
				}
			}
			return nil
		})
		return out
	}
	if left := holding(instances); len(left) != 0 {
		t.Errorf("%v still hold a removed instance's secret", left)
	}
	// Their folders wait in removed/ until the starts pause (runner.Remove).
	deadline := time.Now().Add(10 * time.Second)
	for len(holding(stateDir)) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := holding(stateDir); len(left) != 0 {
		t.Errorf("%v still hold a removed instance's secret", left)
	}
}

// TestTaskDirsPruned: the task folders of task plugs removed from
// plugs.hcl (their run history holds outputs) go after a reconcile that
// loads, at start and while the daemon runs; a configuration that does
// not load removes nothing; a folder with a run's input under way stays;
// nothing is followed through a symlink out of the state dir.
func TestTaskDirsPruned(t *testing.T) {
	dir := t.TempDir()
	for name, content := range sleeperPlugin {
		writeFile(t, filepath.Join(dir, name), content)
	}
	writeFile(t, filepath.Join(dir, "plugins/job/plugin.hcl"), "plugin \"job\" {\n  command = [\"sh\", \"-c\", \"echo '{\\\"ok\\\": true}'\"]\n  task {}\n}\n")
	deployment := func(tasks ...string) string {
		s := sleeperDeployment(map[string]string{"a": "5s"})
		for _, p := range tasks {
			s += fmt.Sprintf("plug %q {\n  source = \"./plugins/job\"\n}\n", p)
		}
		return s
	}
	stateDir := filepath.Join(dir, ".plugs")
	tasks := filepath.Join(stateDir, "tasks")
	oldRuns := filepath.Join(tasks, "old", "runs.json")
	writeFile(t, oldRuns, `[{"output": "hunter4"}]`)
	busy := filepath.Join(tasks, "busy", "input", "default-20261202T000000Z-abcd")
	writeFile(t, busy, "the input of a run under way\n")
	outside := filepath.Join(dir, "outside")
	writeFile(t, filepath.Join(outside, "runs.json"), "not the daemon's\n")
	if err := os.Symlink(outside, filepath.Join(tasks, "link")); err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool { _, err := os.Lstat(p); return err == nil }

	file := filepath.Join(dir, "plugs.hcl")
	writeFile(t, file, "plug \"a\" {\n  source = \"./plugins/sleeper\"\n  bogus = 1\n}\n")
	opts := Options{File: file, StateDir: stateDir}
	c, stop := runDaemon(t, opts)
	waitStatus(t, c, "the first reconcile failed", func(s *api.Status) bool {
		return s.Daemon.LastReconcile != nil && s.Daemon.LastReconcile.Error != ""
	})
	stop()
	if !exists(oldRuns) || !exists(busy) {
		t.Fatal("a configuration that does not load removed a task folder")
	}

	writeFile(t, file, deployment("job", "gone"))
	c, stop = runDaemon(t, opts)
	defer stop()
	waitStatus(t, c, "a running", func(s *api.Status) bool { return len(pids(s)) == 1 })
	if exists(filepath.Dir(oldRuns)) {
		t.Error("the task folder of a plug removed while the daemon was down is still there")
	}
	if !exists(busy) {
		t.Error("the task folder of a run under way was removed")
	}
	if !exists(filepath.Join(tasks, "link")) || !exists(filepath.Join(outside, "runs.json")) {
		t.Error("a symlink in the tasks folder, or what it names, was removed")
	}
	tc := task.UnixClient(api.SocketPath(stateDir))
	defer tc.HTTP.CloseIdleConnections()
	for _, p := range []string{"job", "gone"} {
		if res, err := tc.Exec(t.Context(), p, "", nil, task.ExecOptions{}); err != nil || res.Result != task.ResultSuccess {
			t.Fatalf("exec %s: %+v, %v", p, res, err)
		}
		if !exists(filepath.Join(tasks, p, "runs.json")) {
			t.Fatalf("%s ran and has no run history", p)
		}
	}

	// Removed while the daemon runs: gone after the apply.
	writeFile(t, file, deployment("job"))
	if _, err := c.Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(tasks, "gone")) {
		t.Error("the task folder of a plug removed while the daemon runs is still there after the apply")
	}
	if !exists(filepath.Join(tasks, "job", "runs.json")) {
		t.Error("the task folder of a declared task was removed")
	}
	// A configuration that does not load, without job: nothing goes.
	writeFile(t, file, "plug \"a\" {\n  source = \"./plugins/sleeper\"\n  bogus = 1\n}\n")
	if _, err := c.Apply(t.Context()); err == nil {
		t.Fatal("a bad plugs.hcl applied")
	}
	if !exists(filepath.Join(tasks, "job", "runs.json")) {
		t.Error("a configuration that does not load removed a task folder")
	}
	stop()

	// The tasks folder itself a symlink out of the state dir: nothing in
	// it is removed.
	if err := os.Rename(tasks, filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "moved"), tasks); err != nil {
		t.Fatal(err)
	}
	writeFile(t, file, deployment())
	c, stop = runDaemon(t, opts)
	waitStatus(t, c, "a running", func(s *api.Status) bool { return len(pids(s)) == 1 })
	stop()
	if !exists(filepath.Join(dir, "moved", "job", "runs.json")) {
		t.Error("a task folder behind a symlinked tasks folder was removed")
	}
}
