package runner

import (
	"os"
	"os/user"
	"strconv"
	"strings"
	"testing"
)

// TestGroupIsTheProcessGroupID: a plug's group = runs its process with that
// primary group (as root: switching needs it).
func TestGroupIsTheProcessGroupID(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("switching groups needs root")
	}
	g, err := user.LookupGroup("nogroup")
	if err != nil {
		t.Skip("no group nogroup on this host")
	}
	r, sts := newTestRunner(t, Options{})
	s := fakeSpec("grp", "default", "sleep")
	s.Group = "nogroup"
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	pid := sts.await(t, s.ID, "running", running).PID
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var gid string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Gid:" {
			gid = f[1]
		}
	}
	if gid != g.Gid {
		t.Errorf("process gid %s, want nogroup's %s", gid, g.Gid)
	}
}
