package daemon

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/plugs-dev/plugs/internal/testplugin"
)

// peerUID is the other local user the socket tests connect as (nobody).
const peerUID = 65534

// runAsOther runs the test binary as uid peerUID, as a client of the daemon
// of stateDir, and returns what it printed.
func runAsOther(t *testing.T, stateDir string) string {
	t.Helper()
	// The go test build folder is private: a copy the other user can run.
	bin := testplugin.CopySelf(t, t.TempDir(), "client")
	openUp(t, filepath.Dir(bin))
	cmd := exec.Command(bin, stateDir)
	cmd.Env = append(os.Environ(), testplugin.Env+"=dial")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: peerUID, Gid: peerUID}}
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as uid %d: %v\n%s", peerUID, err, b)
	}
	return strings.TrimSpace(string(b))
}

// openUp makes dir and its parents traversable by every user.
func openUp(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSocketRefusesOtherUsers: plugs.sock is created 0600 with no gap
// (even under umask 0), another local user is refused by its mode, and, if
// the mode is opened up, by the daemon's peer-credential check; both are
// reported as permission errors, not as "no daemon answers".
func TestSocketRefusesOtherUsers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	old := syscall.Umask(0)
	stateDir := filepath.Join(t.TempDir(), "state")
	srv, err := serveAPI(filepath.Join(mkdir(t, stateDir), "plugs.sock"), &fakeBackend{dir: stateDir}, slog.New(slog.DiscardHandler))
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.shutdown(context.Background())
	sock := filepath.Join(stateDir, "plugs.sock")
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v (%v), want 0600 under umask 0", fi.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir, ".sock-*")); len(left) != 0 {
		t.Errorf("the private bind folder is left: %v", left)
	}
	if got := runAsOther(t, "/nonexistent-plugs-state"); !strings.HasPrefix(got, "other:") {
		t.Errorf("no daemon at all: %q, want a not-running error", got)
	}
	openUp(t, stateDir)
	if got := runAsOther(t, stateDir); !strings.HasPrefix(got, "permission:") || !strings.Contains(got, sock) {
		t.Errorf("other user on a 0600 socket: %q, want a permission error naming the socket", got)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	if got := runAsOther(t, stateDir); !strings.HasPrefix(got, "permission:") || !strings.Contains(got, "uid 65534 may not use this daemon") {
		t.Errorf("other user on a 0666 socket: %q, want the daemon's peer-credential refusal", got)
	}
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
