package spec

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps spec free of processes, networks, git and
// Prometheus: it decodes files and nothing else.
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave only %v", deps)
	}
	forbidden := []string{"os/exec", "net", "net/http", "github.com/go-git/", "github.com/prometheus/", "github.com/spf13/cobra", "github.com/eclipse/paho.mqtt.golang"}
	for _, dep := range deps {
		for _, bad := range forbidden {
			if dep == bad || strings.HasSuffix(bad, "/") && strings.HasPrefix(dep, bad) {
				t.Errorf("spec depends on %s", dep)
			}
		}
	}
}
