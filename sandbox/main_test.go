package sandbox

import (
	"os"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/internal/testplugin"
)

func TestMain(m *testing.M) {
	MaybeExec()
	testplugin.Run(nil) // the fake plugin a test starts through the shim
	os.Exit(m.Run())
}

// plugin is a copy of the test binary in a folder every user may read: the
// go build cache is private to root.
func plugin(t *testing.T) (dir, path string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sandbox-plugin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path = testplugin.CopySelf(t, dir, "plugin")
	return dir, path
}

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }
