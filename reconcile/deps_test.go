package reconcile_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps reconcile pure: planning and applying must not be
// able to spawn processes, open network connections, or export metrics.
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	for _, pkg := range []string{"github.com/plugs-dev/plugs/reconcile"} {
		out, err := exec.Command(gobin, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed only %v", pkg, deps)
		}
		for _, dep := range deps {
			switch {
			case dep == "os/exec", dep == "net", dep == "net/http", // net/url and net/netip are pure data
				strings.HasPrefix(dep, "github.com/prometheus/"),
				strings.HasPrefix(dep, "github.com/go-git/"),
				strings.HasPrefix(dep, "github.com/eclipse/paho"),
				strings.HasPrefix(dep, "github.com/mochi-mqtt/"),
				strings.HasPrefix(dep, "github.com/fsnotify/"),
				dep == "github.com/plugs-dev/plugs/fetch", dep == "github.com/plugs-dev/plugs/runner":
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
}
