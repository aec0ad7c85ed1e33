package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/api"
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
	_ = filepath.WalkDir(stateDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "hunter2") || strings.Contains(string(b), "hunter3") {
				t.Errorf("%s still holds a removed instance's secret", p)
			}
		}
		return nil
	})
}
