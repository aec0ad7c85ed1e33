// Package gittest makes git repositories and serves them on 127.0.0.1 for
// tests: git daemon (git://) and smart HTTP (git http-backend). It needs the
// git CLI; tests skip when it is missing.
package gittest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/internal/syncbuf"
)

// Repo is a non-bare git repository in a test's temporary folder.
type Repo struct {
	t    testing.TB
	Root string // the folder holding the repository: serve this
	Name string // the repository's folder name below Root
	Dir  string // Root/Name
}

// NewRepo makes an empty repository named "repo" in a fresh folder.
func NewRepo(t testing.TB) *Repo { return NewRepoIn(t, t.TempDir(), "repo") }

// NewRepoIn makes an empty repository root/name (several repos may share a
// root, and one server).
func NewRepoIn(t testing.TB, root, name string) *Repo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	r := &Repo{t: t, Root: root, Name: name, Dir: filepath.Join(root, name)}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.Git("init", "-q", "-b", "main")
	return r
}

// Git runs git in the repository and returns its trimmed output.
func (r *Repo) Git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.Dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.org",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.org",
		"GIT_AUTHOR_DATE=2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2024-01-01T00:00:00Z",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		// No background "gc --auto --detach": it would hold the output
		// pipes open after git returns.
		"GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=gc.auto", "GIT_CONFIG_VALUE_0=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = cleanupWait
	if err := cmd.Run(); err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// Commit writes files (name -> content; a name ending in "*" is made
// executable, without the star; an empty content removes the file), commits
// everything and returns the commit id.
func (r *Repo) Commit(files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if n, ok := strings.CutSuffix(name, "*"); ok {
			name, mode = n, 0o755
		}
		p := filepath.Join(r.Dir, filepath.FromSlash(name))
		if content == "" {
			_ = os.Remove(p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			r.t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			r.t.Fatal(err)
		}
	}
	r.Git("add", "-A")
	r.Git("commit", "-q", "--allow-empty", "-m", fmt.Sprintf("commit %d", len(files)))
	return r.Head()
}

// Head returns the id of the checked-out commit.
func (r *Repo) Head() string { return r.Git("rev-parse", "HEAD") }

// Tag tags HEAD with a lightweight tag.
func (r *Repo) Tag(name string) { r.Git("tag", name) }

// AnnotatedTag tags HEAD with an annotated tag.
func (r *Repo) AnnotatedTag(name string) { r.Git("tag", "-a", "-m", name, name) }

// Branch creates branch name at HEAD and checks it out.
func (r *Repo) Branch(name string) { r.Git("checkout", "-q", "-b", name) }

// Checkout checks out an existing branch.
func (r *Repo) Checkout(name string) { r.Git("checkout", "-q", name) }

// Daemon serves every repository below root with git daemon on a free
// 127.0.0.1 port until the test ends; it returns "git://127.0.0.1:PORT".
func Daemon(t testing.TB, root string) string {
	t.Helper()
	_, url := startDaemon(t, root)
	return url
}

// StoppableDaemon is Daemon with a stop that kills the server before the
// test ends (a remote that goes away); the cleanup still reaps it.
func StoppableDaemon(t testing.TB, root string) (url string, stop func()) {
	t.Helper()
	cmd, url := startDaemon(t, root)
	return url, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// cleanupWait bounds how long a server's cleanup waits for it to be reaped
// after SIGKILL of its process group.
const cleanupWait = 10 * time.Second

// startDaemon starts git daemon (see Daemon) and returns its command.
//
// It runs in its own process group: git daemon runs git-daemon as a child,
// which forks one more per connection, and the cleanup SIGKILLs the whole
// group. Its stderr goes through a pipe to a buffer (shown if it exits
// early); WaitDelay bounds how long Wait waits for that pipe, which a
// surviving grandchild could otherwise hold open forever.
func startDaemon(t testing.TB, root string) (*exec.Cmd, string) {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command("git", "daemon", "--reuseaddr", "--export-all", "--base-path="+root,
		"--listen=127.0.0.1", fmt.Sprintf("--port=%d", port), "--informative-errors", root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("git daemon: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(cleanupWait):
			t.Errorf("git daemon (pid %d) not reaped %v after SIGKILL of its group", cmd.Process.Pid, cleanupWait)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitListening(t, addr, done, &stderr)
	return cmd, "git://" + addr
}

// HTTP serves every repository below root over git's smart HTTP protocol
// (git http-backend behind net/http/cgi) on 127.0.0.1 until the test ends;
// it returns "http://127.0.0.1:PORT". With user set, requests must carry
// that basic-auth user and password.
func HTTP(t testing.TB, root string, userPass ...string) string {
	t.Helper()
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Skipf("git --exec-path: %v", err)
	}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	var h http.Handler = backend
	if len(userPass) == 2 {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != userPass[0] || p != userPass[1] {
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			backend.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv.URL
}

// Proxy forwards TCP connections from a free 127.0.0.1 port to target and
// counts them; tests use it to prove that an operation made no connection.
type Proxy struct {
	Addr     string // host:port to connect to
	accepted atomic.Int64
	ln       net.Listener
	wg       sync.WaitGroup
}

// NewProxy starts a counting proxy to target (host:port) until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), ln: ln}
	var mu sync.Mutex
	var conns []net.Conn
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); closeWrite(up) }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); closeWrite(c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// Connections returns how many connections the proxy accepted.
func (p *Proxy) Connections() int64 { return p.accepted.Load() }

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitListening waits until addr accepts connections, or the server exited.
func waitListening(t testing.TB, addr string, exited <-chan struct{}, stderr fmt.Stringer) {
	t.Helper()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Fatalf("git daemon on %s exited before listening: %s", addr, stderr)
		default:
		}
		if i > 2000 {
			t.Fatalf("git daemon on %s never listened: %v; stderr: %s", addr, err, stderr)
		}
		time.Sleep(5 * time.Millisecond) // readiness polling, not a timed assertion
	}
}
