package daemon

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStateLock(t *testing.T) {
	dir := t.TempDir()
	l, err := lockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockStateDir(dir)
	if err == nil || !strings.Contains(err.Error(), "another plugs daemon") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second lock: %v, want a clear error", err)
	}
	l.release()
	l2, err := lockStateDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.release()
}

// TestStateLockSurvivesItsFileDeleted: daemon.lock deleted under a running
// daemon (a clean-up, a hostile user) does not let a second daemon in: the
// state directory itself is locked.
func TestStateLockSurvivesItsFileDeleted(t *testing.T) {
	dir := t.TempDir()
	l, err := lockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.release()
	if err := os.Remove(filepath.Join(dir, "daemon.lock")); err != nil {
		t.Fatal(err)
	}
	if l2, err := lockStateDir(dir); err == nil || !strings.Contains(err.Error(), "another plugs daemon") {
		l2.release()
		t.Fatalf("lock with daemon.lock deleted under the holder: %v, want refused as another daemon's", err)
	}
}

func TestSDNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := sdNotify("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v", err)
	}
}

func TestWatchFilesRenameOnSave(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plugs.hcl")
	if err := os.WriteFile(file, []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fired := make(chan struct{}, 10)
	wait, err := watchFiles(ctx, []string{file, filepath.Join(dir, "plugs.lock.hcl")},
		slog.New(slog.DiscardHandler), func() { fired <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); wait() }()

	// An unrelated file does not fire.
	if err := os.WriteFile(filepath.Join(dir, "other.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An editor's save: write a temp file, rename it over the original.
	tmp := filepath.Join(dir, ".plugs.hcl.swp")
	if err := os.WriteFile(tmp, []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("rename-on-save did not fire")
	}
	// Writes in place fire too (reconcile.Loop debounces a burst): the watch
	// survives the rename.
	for i := range 5 {
		if err := os.WriteFile(file, []byte{byte('c' + i)}, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatal("write after rename did not fire")
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:s3cret@git.example.org/x.git": "https://git.example.org/x.git",
		"git://127.0.0.1:9418/cfg":                  "git://127.0.0.1:9418/cfg",
		"/local/path":                               "/local/path",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
