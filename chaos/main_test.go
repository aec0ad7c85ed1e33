package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// plugsBin is the plugs binary TestMain builds for the whole suite.
var plugsBin string

// size is the configuration this run uses (see Selected).
var size Size

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	size = Selected(os.Getenv("PLUGS_CHAOS"))
	dir, err := os.MkdirTemp("", "plugs-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	plugsBin = filepath.Join(dir, "plugs")
	args := []string{"build", "-o", plugsBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/plugs")...)
	build.Dir = ".." // the module root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: build plugs:", err)
		return 2
	}
	fmt.Printf("CHAOS size: %s (race=%v)\n", size.Name, raceEnabled)
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: goroutine leak:", err)
			return 1
		}
	}
	return code
}
