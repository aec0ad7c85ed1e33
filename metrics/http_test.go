package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"golang.org/x/crypto/bcrypt"
)

func get(t *testing.T, url string, auth ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(auth) == 2 {
		req.SetBasicAuth(auth[0], auth[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestHealthAndReadiness(t *testing.T) {
	var notReady atomic.Pointer[error]
	fail := errors.New("reconcile: clone https://bob:hunter2@git.example.org/x.git: timeout")
	notReady.Store(&fail)
	ready := func() error {
		if e := notReady.Load(); e != nil {
			return *e
		}
		return nil
	}
	reg, _, _ := snapshotFixture(t)
	srv := httptest.NewServer(Handler(reg, ready))
	defer srv.Close()

	if code, body := get(t, srv.URL+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body := get(t, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "timeout") || strings.Contains(body, "hunter2") {
		t.Errorf("/readyz while failing = %d %q; want 503 with the error, without its password", code, body)
	}
	notReady.Store(nil)
	if code, body := get(t, srv.URL+"/readyz"); code != 200 || body != "ok\n" {
		t.Errorf("/readyz when ready = %d %q", code, body)
	}
	if code, body := get(t, srv.URL+"/metrics"); code != 200 || !strings.Contains(body, `plugs_instance_up{instance="patient-17",plug="heart-rate"} 1`) {
		t.Errorf("/metrics = %d %q", code, body)
	}
	if code, _ := get(t, srv.URL+"/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing = %d, want 404", code)
	}
}

// TestPromtoolCheckMetrics lints a real scrape, runtime collectors and real
// /proc figures included, with Prometheus's own tool.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (scripts/test-deps.sh installs it)")
	}
	reg := NewRegistry()
	src := &fakeSource{
		instances: []instance.Status{{ID: instance.ID{Plug: "self", Instance: "default"},
			State: instance.StateRunning, PID: os.Getpid(), StartedAt: time.Now()}},
		plugins: []PluginInfo{{Plug: "self", Version: "1.0.0", Revision: "abc", Source: "./self"}},
	}
	m := New(reg, src)
	m.ReconcileDone(time.Second, nil)
	m.FetchDone("self", time.Second)
	srv := httptest.NewServer(Handler(reg, nil))
	defer srv.Close()
	code, body := get(t, srv.URL+"/metrics")
	if code != 200 || !strings.Contains(body, "plugs_instance_cpu_seconds_total") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics = %d, missing expected series:\n%s", code, body)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// serve runs ServeListener on a free loopback port until the test ends.
func serve(t *testing.T, webConfig string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg, _, _ := snapshotFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, l, webConfig, Handler(reg, nil), nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + l.Addr().String()
}

func TestBasicAuthFromWebConfig(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("scrape-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(cfg, []byte("basic_auth_users:\n  prometheus: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := serve(t, cfg) + "/metrics"

	if code, _ := get(t, url); code != http.StatusUnauthorized {
		t.Errorf("unauthenticated scrape = %d, want 401", code)
	}
	if code, _ := get(t, url, "prometheus", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong password = %d, want 401", code)
	}
	if code, body := get(t, url, "prometheus", "scrape-pw"); code != 200 || !strings.Contains(body, "plugs_instance_up") {
		t.Errorf("authenticated scrape = %d %q", code, body)
	}
}

func TestServeWithoutWebConfig(t *testing.T) {
	url := serve(t, "")
	if code, _ := get(t, url+"/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
}

func TestServeRejectsBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(bad, []byte("basic_auth_users: [not, a, map\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, tc := range map[string]struct{ addr, cfg, want string }{
		"bad web config":     {"127.0.0.1:0", bad, "web config"},
		"missing web config": {"127.0.0.1:0", filepath.Join(t.TempDir(), "nope.yml"), "web config"},
		"bad address":        {"127.0.0.1:99999", "", "metrics listen"},
	} {
		err := Serve(ctx, tc.addr, tc.cfg, Handler(nil, nil), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Serve = %v, want an error about %q", name, err, tc.want)
		}
	}
}

func TestServeStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", "", Handler(nil, nil), nil) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel = %v, want nil", err)
	}
}
