package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func probeOnce(t *testing.T, c Check, dir string, env []string) Result {
	t.Helper()
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	return (&Probes{}).Probe(ctx, testID, c, dir, env)
}

func TestHTTPProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte(`{"status":"up"}`))
		case "/busy":
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("draining\n"))
		default:
			http.Error(w, "", http.StatusNotFound)
		}
	}))
	defer srv.Close()
	for _, c := range []struct {
		path, expect string
		ok           bool
		out          string
	}{
		{"/ok", "", true, "HTTP 200"},
		{"/ok", `"status":"up"`, true, "HTTP 200"},
		{"/ok", `down`, false, `HTTP 200, body does not match "down": {"status":"up"}`},
		{"/busy", "", false, "HTTP 503: draining\n"},
		{"/missing", "", false, "HTTP 404: \n"},
	} {
		got := probeOnce(t, Check{Name: "web", Type: TypeHTTP, URL: srv.URL + c.path, ExpectBody: c.expect}, "", nil)
		if got.OK != c.ok || got.Output != c.out {
			t.Errorf("%s %q: %+v, want %t %q", c.path, c.expect, got, c.ok, c.out)
		}
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	if got := probeOnce(t, Check{Type: TypeHTTP, URL: "http://" + addr + "/"}, "", nil); got.OK || !strings.Contains(got.Output, "connection refused") {
		t.Errorf("closed port: %+v", got)
	}
}

func TestTCPProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if got := probeOnce(t, Check{Type: TypeTCP, Address: addr}, "", nil); !got.OK {
		t.Errorf("open port: %+v", got)
	}
	l.Close()
	if got := probeOnce(t, Check{Type: TypeTCP, Address: addr}, "", nil); got.OK || got.Output != "connect: connection refused" {
		t.Errorf("closed port: %+v", got)
	}
}

func TestExecProbe(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"checked $PLUGS_PLUG\"\n[ -f ok ] || { echo not ok >&2; exit 2; }\n"
	if err := os.WriteFile(filepath.Join(dir, "check.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "PLUGS_PLUG=hr"}
	c := Check{Type: TypeExec, Command: []string{"./check.sh"}}
	if got := probeOnce(t, c, dir, env); got.OK || got.Output != "exit 2: checked hr\nnot ok\n" {
		t.Errorf("failing: %+v", got)
	}
	os.WriteFile(filepath.Join(dir, "ok"), nil, 0o644)
	if got := probeOnce(t, c, dir, env); !got.OK || got.Output != "checked hr\n" {
		t.Errorf("passing: %+v", got)
	}
	// A probe past its timeout is killed with its whole group.
	pidfile := filepath.Join(dir, "pid")
	slow := Check{Type: TypeExec, Timeout: 300 * time.Millisecond, Command: []string{"sh", "-c", "sleep 60 & echo $! > " + pidfile + "; wait"}}
	if got := probeOnce(t, slow, dir, env); got.OK || !strings.HasPrefix(got.Output, "timed out after 300ms") {
		t.Errorf("slow: %+v", got)
	}
	raw, _ := os.ReadFile(pidfile)
	if pid := strings.TrimSpace(string(raw)); pid != "" && !gone(pid) {
		t.Errorf("grandchild %s of a timed-out probe still runs", pid)
	}
	if got := probeOnce(t, Check{Type: TypeExec, Command: []string{"./missing"}}, dir, env); got.OK || !strings.Contains(got.Output, "no such file") {
		t.Errorf("missing: %+v", got)
	}
}

// gone waits (bounded) until pid no longer runs: SIGKILL is delivered
// asynchronously, and the reaper of an orphan is another process.
func gone(pid string) bool {
	for range 500 {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}
