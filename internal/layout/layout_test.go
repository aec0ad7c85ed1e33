package layout_test

import (
	"testing"

	"github.com/plugs-dev/plugs/internal/layout"
)

// TestLayout pins the names DESIGN.md and the README document: they are
// user-visible (the lock is committed, scripts read output.log).
func TestLayout(t *testing.T) {
	for got, want := range map[string]string{
		layout.LockFile("/srv/site/plugs.hcl"):        "/srv/site/plugs.lock.hcl",
		layout.DefaultStateDir("/srv/site/plugs.hcl"): "/srv/site/.plugs",
		layout.DefaultStateDir("plugs.hcl"):           ".plugs",
		layout.PluginTree("/s", "hr", "abc"):          "/s/plugins/hr/abc",
		layout.BundlePluginTree("hr", "abc"):          "plugins/hr/abc",
		layout.Cache("/s", "git", "f00"):              "/s/cache/git/f00",
		layout.InstanceDir("/s", "hr", "patient-17"):  "/s/instances/hr/patient-17",
		layout.OutputLog("/s", "hr", "patient-17"):    "/s/instances/hr/patient-17/output.log",
		layout.Socket("/s"):                           "/s/plugs.sock",
		layout.Setup("/s"):                            "/s/setup",
		layout.RolloutFile("/s", "hr"):                "/s/rollouts/hr.json",
		layout.Tasks("/s"):                            "/s/tasks",
		layout.TaskDir("/s", "backup"):                "/s/tasks/backup",
		layout.TaskInput("/s", "backup"):              "/s/tasks/backup/input",
		layout.TaskHistory("/s", "backup"):            "/s/tasks/backup/runs.json",
		layout.TaskSchedule("/s", "backup"):           "/s/tasks/backup/schedule.json",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}
