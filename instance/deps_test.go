package instance_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStdlibOnly keeps the contract a leaf: it imports nothing outside the
// standard library, so every consumer can share it for free.
func TestStdlibOnly(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/plugs-dev/plugs/instance").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/plugs-dev/plugs/instance" {
			t.Errorf("instance depends on %s", dep)
		}
	}
}
