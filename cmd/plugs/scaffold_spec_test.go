package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGoScaffoldBuilds scaffolds the Go plugin and runs its own test with
// the go command, offline: the module cache must hold paho.mqtt.golang,
// which this module requires too.
func TestGoScaffoldBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go module")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	dir := filepath.Join(t.TempDir(), "gob")
	files, err := scaffoldPlugin(dir, "gob", "go")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 5 {
		t.Errorf("wrote %v, want 5 files", files)
	}
	run := func(args ...string) string {
		cmd := exec.Command(gobin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOPROXY=off", "GOWORK=off", "GOFLAGS=-mod=readonly")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run("vet", "."); out != "" {
		t.Errorf("go vet: %s", out)
	}
	if out := run("test", "-count=1", "."); !strings.HasPrefix(out, "ok") {
		t.Errorf("go test: %s", out)
	}
	if out, err := exec.Command("gofmt", "-l", dir).CombinedOutput(); err == nil && len(out) > 0 {
		t.Errorf("scaffold not gofmt-clean: %s", out)
	}
}
