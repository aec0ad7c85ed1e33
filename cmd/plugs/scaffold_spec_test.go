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

// TestGoScaffoldMatchesModule keeps the scaffold's go.mod and go.sum on the
// versions this module builds with: the scaffold's own test runs offline, so
// a version the module cache of a fresh checkout does not hold fails there
// (the scaffold once pinned golang.org/x/net v0.44.0 after go.mod moved on).
func TestGoScaffoldMatchesModule(t *testing.T) {
	mod := readModVersions(t, "../../go.mod")
	tmpl := readModVersions(t, "templates/go/go.mod.tmpl")
	for path, v := range tmpl {
		if want, ok := mod[path]; ok && want != v {
			t.Errorf("templates/go/go.mod.tmpl: %s %s, go.mod has %s", path, v, want)
		}
	}
	sum, err := os.ReadFile("../../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	tsum, err := os.ReadFile("templates/go/go.sum.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(tsum)), "\n") {
		if !strings.Contains(string(sum), line+"\n") {
			t.Errorf("templates/go/go.sum.tmpl line not in go.sum: %s", line)
		}
	}
}

// readModVersions returns the go directive (key "go") and every required
// module's version of a go.mod file.
func readModVersions(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		switch {
		case len(f) >= 2 && f[0] == "go":
			out["go"] = f[1]
		case len(f) >= 2 && strings.Contains(f[0], ".") && strings.HasPrefix(f[1], "v"):
			out[f[0]] = f[1]
		}
	}
	return out
}
