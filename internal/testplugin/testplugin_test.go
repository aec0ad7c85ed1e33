package testplugin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	Main(m, map[string]Mode{"echo": func(args []string) int {
		os.Stdout.WriteString(strings.Join(args, " ") + "\n")
		return 7
	}})
}

// TestModesDocumented: Modes documents every mode, and only those.
func TestModesDocumented(t *testing.T) {
	for name := range modes {
		if _, ok := Modes[name]; !ok {
			t.Errorf("mode %s is not in Modes", name)
		}
	}
	for name := range Modes {
		if _, ok := modes[name]; !ok {
			t.Errorf("Modes documents %s, which does not exist", name)
		}
	}
}

// TestModesRun starts the test binary as a few plugins: exit codes,
// output, an extra mode, and the probes.
func TestModesRun(t *testing.T) {
	exit := Command("exit", "42")
	if _ = exit.Run(); exit.ProcessState == nil || exit.ProcessState.ExitCode() != 42 {
		t.Errorf("exit 42: %v", exit.ProcessState)
	}
	cmd := Command("echo", "a", "b")
	out, _ := cmd.Output()
	if string(out) != "a b\n" || cmd.ProcessState.ExitCode() != 7 {
		t.Errorf("extra mode: %q, code %d", out, cmd.ProcessState.ExitCode())
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "x")
	out, err := Command("write", f, filepath.Join(dir, "no", "such")).Output()
	if err != nil || !strings.HasPrefix(string(out), f+" ok\n") || !strings.Contains(string(out), "no such file") {
		t.Errorf("write: %q %v", out, err)
	}
	out, _ = Command("connect", "127.0.0.1:1").Output()
	if string(out) != "127.0.0.1:1 ECONNREFUSED\n" {
		t.Errorf("connect: %q", out)
	}
	if out, _ := Command("nonesuch").CombinedOutput(); !strings.Contains(string(out), "unknown mode") {
		t.Errorf("unknown mode: %q", out)
	}
}
