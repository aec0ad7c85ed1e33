package gittest

import (
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestDaemonCleanup serves a repository, clones from it (git daemon forks a
// child per connection), and checks that the cleanup left no process of
// the server's group behind.
func TestDaemonCleanup(t *testing.T) {
	var pgid int
	t.Run("serve", func(t *testing.T) {
		r := NewRepo(t)
		head := r.Commit(map[string]string{"a.txt": "a\n"})
		cmd, url := startDaemon(t, r.Root)
		pgid = cmd.Process.Pid
		out, err := exec.Command("git", "ls-remote", url+"/repo", "refs/heads/main").CombinedOutput()
		if err != nil {
			t.Fatalf("git ls-remote: %v\n%s", err, out)
		}
		if !strings.HasPrefix(string(out), head) {
			t.Fatalf("ls-remote = %q, want %s", out, head)
		}
		if err := syscall.Kill(-pgid, 0); err != nil {
			t.Fatalf("server group %d not alive while serving: %v", pgid, err)
		}
	})
	if pgid == 0 {
		t.Fatal("the server did not start")
	}
	// Killed grandchildren are reaped by init, a moment later: poll (bounded).
	var err error
	for range 500 {
		if err = syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process group %d after cleanup: kill 0 = %v, want ESRCH", pgid, err)
}

func TestProxyCounts(t *testing.T) {
	r := NewRepo(t)
	r.Commit(map[string]string{"a.txt": "a\n"})
	url := Daemon(t, r.Root)
	p := NewProxy(t, strings.TrimPrefix(url, "git://"))
	if out, err := exec.Command("git", "ls-remote", "git://"+p.Addr+"/repo").CombinedOutput(); err != nil {
		t.Fatalf("git ls-remote through the proxy: %v\n%s", err, out)
	}
	if n := p.Connections(); n != 1 {
		t.Fatalf("proxy counted %d connections, want 1", n)
	}
}
