package task

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"

	"github.com/plugs-dev/plugs/internal/tlstest"

	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"golang.org/x/crypto/bcrypt"
)

// serveAPI serves m's handler like plugs run --api-addr does, on 127.0.0.1:0.
func serveAPI(t *testing.T, m *Manager, opts ServerOptions) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckServe(l.Addr().String(), opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, opts, Handler(m)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return l.Addr().String()
}

func call(t *testing.T, c *http.Client, method, url, token, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestRemoteAPIWithTokenOverTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := tlstest.SelfSigned(t, dir)
	webCfg := filepath.Join(dir, "web.yml")
	os.WriteFile(webCfg, []byte("tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n"), 0o600)
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte("# the main server\ns3cret-token\n\nother-token\n"), 0o600)

	m := newTestManager(t, &fakeRunner{}, "", target("notify", "default", Config{}))
	addr := serveAPI(t, m, ServerOptions{TokenFile: tokens, WebConfigFile: webCfg})
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	url := "https://" + addr + "/v1/tasks/notify/exec"

	code, h, body := call(t, c, "POST", url, "", `{"text":"hi"}`)
	if code != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d %s", code, body)
	}
	if code, _, body = call(t, c, "POST", url, "wrong", `{}`); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d %s", code, body)
	}
	code, _, body = call(t, c, "POST", url, "s3cret-token", `{"text":"hi"}`)
	if code != 200 {
		t.Fatalf("valid token: %d %s", code, body)
	}
	var res Result
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.ExitCode != 0 || res.Text() != `{"text":"hi"}` || res.RunID == "" {
		t.Fatalf("result %s: %v", body, err)
	}
	if code, _, _ = call(t, c, "POST", url, "other-token", ``); code != 200 {
		t.Fatalf("second token: %d", code)
	}
	// Plain HTTP is not served when TLS is configured.
	if resp, err := http.Post("http://"+addr+"/v1/tasks/notify/exec", "", nil); err == nil {
		if resp.StatusCode == 200 {
			t.Fatal("plain http served")
		}
		resp.Body.Close()
	}
}

func TestAPIErrorsAndBusy(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	r := &fakeRunner{fn: func(ctx context.Context, _ instance.Spec, run Run) (Outcome, error) {
		if string(run.Input) == "block" {
			started <- struct{}{}
			<-release
		}
		return Outcome{Output: run.Input, StartedAt: time.Now(), Duration: time.Second}, nil
	}}
	m := newTestManager(t, r, "", target("p", "default", Config{MaxConcurrent: 1, Queue: -1, MaxTimeout: time.Hour}),
		target("multi", "a", Config{}), target("multi", "b", Config{}))
	srv := httptest.NewServer(Handler(m))
	defer srv.Close()
	c := srv.Client()

	done := make(chan struct{})
	go func() {
		defer close(done)
		call(t, c, "POST", srv.URL+"/v1/tasks/p/exec", "", "block")
	}()
	<-started
	code, h, body := call(t, c, "POST", srv.URL+"/v1/tasks/p/exec", "", "x")
	if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, `"kind": "busy"`) {
		t.Fatalf("busy: %d %v %s", code, h, body)
	}
	close(release)
	<-done

	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"POST", "/v1/tasks/nope/exec", 404},
		{"POST", "/v1/tasks/multi/exec", 404}, // several instances: name one
		{"POST", "/v1/tasks/multi/b/exec", 200},
		{"POST", "/v1/tasks/multi/exec?instance=a", 200},
		{"POST", "/v1/tasks/p/exec?timeout=bogus", 400},
		{"POST", "/v1/tasks/p/exec?timeout=2h", 400},
		{"POST", "/v1/tasks/p/exec?timeout=30m&max_output=10", 200},
		{"POST", "/v1/tasks/p/exec?max_output=999999999", 400},
		{"GET", "/v1/tasks/p/runs?n=2", 200},
		{"GET", "/v1/tasks/nope/runs", 404},
		{"GET", "/v1/tasks", 200},
	} {
		if code, _, body := call(t, c, tc.method, srv.URL+tc.path, "", "in"); code != tc.code {
			t.Errorf("%s %s = %d, want %d: %s", tc.method, tc.path, code, tc.code, body)
		}
	}
	_, _, body = call(t, c, "GET", srv.URL+"/v1/tasks/p/runs?n=2", "", "")
	var runs []Result
	if err := json.Unmarshal([]byte(body), &runs); err != nil || len(runs) != 2 {
		t.Fatalf("runs: %s %v", body, err)
	}
	_, _, body = call(t, c, "GET", srv.URL+"/v1/tasks", "", "")
	var tasks []TaskInfo
	if err := json.Unmarshal([]byte(body), &tasks); err != nil || len(tasks) != 3 || tasks[2].LastRun == nil {
		t.Fatalf("tasks: %s %v", body, err)
	}
}

func TestCheckServeRefusesOpenNonLoopback(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte("t\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("# none\n"), 0o600)
	users := filepath.Join(dir, "web.yml")
	// password "test", bcrypt
	os.WriteFile(users, []byte("basic_auth_users:\n  main: $2y$10$X0h1gDsPszWURQaxFN8ZOe.oCLCQW3N3lnr8DAzyhD0L9QbsGmWc.\n"), 0o600)
	noUsers := filepath.Join(dir, "tls-only.yml")
	os.WriteFile(noUsers, []byte("http_server_config:\n  http2: true\n"), 0o600)
	certFile, keyFile, _ := tlstest.SelfSigned(t, dir)
	mtls := filepath.Join(dir, "mtls.yml")
	os.WriteFile(mtls, []byte("tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+
		"\n  client_ca_file: "+certFile+"\n  client_auth_type: RequireAndVerifyClientCert\n"), 0o600)
	optionalCerts := filepath.Join(dir, "optional.yml")
	os.WriteFile(optionalCerts, []byte("tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+
		"\n  client_ca_file: "+certFile+"\n  client_auth_type: VerifyClientCertIfGiven\n"), 0o600)

	for _, tc := range []struct {
		addr string
		opts ServerOptions
		ok   bool
	}{
		{"127.0.0.1:9470", ServerOptions{}, true},
		{"[::1]:9470", ServerOptions{}, true},
		{"localhost:9470", ServerOptions{}, true},
		{"0.0.0.0:9470", ServerOptions{}, false},
		{":9470", ServerOptions{}, false},
		{"192.0.2.1:9470", ServerOptions{WebConfigFile: noUsers}, false},
		{"0.0.0.0:9470", ServerOptions{TokenFile: tokens}, true},
		{"0.0.0.0:9470", ServerOptions{WebConfigFile: users}, true},
		{"0.0.0.0:9470", ServerOptions{TokenFile: empty}, false},
		{"127.0.0.1:9470", ServerOptions{TokenFile: tokens, WebConfigFile: users}, false}, // one Authorization header
		{"127.0.0.1:9470", ServerOptions{TokenFile: tokens, WebConfigFile: noUsers}, true},
		{"0.0.0.0:9470", ServerOptions{WebConfigFile: mtls}, true},           // client certificates authenticate
		{"0.0.0.0:9470", ServerOptions{WebConfigFile: optionalCerts}, false}, // a client without one gets in
		{"0.0.0.0:9470", ServerOptions{WebConfigFile: mtls, TokenFile: tokens}, true},
		{"0.0.0.0:9470", ServerOptions{TokenFile: filepath.Join(dir, "missing")}, false},
	} {
		err := CheckServe(tc.addr, tc.opts)
		if (err == nil) != tc.ok {
			t.Errorf("CheckServe(%s, %+v) = %v, want ok=%v", tc.addr, tc.opts, err, tc.ok)
		}
	}
}

func TestBasicAuthFromWebConfig(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "web.yml")
	hash, _ := bcrypt.GenerateFromPassword([]byte("test"), bcrypt.MinCost)
	os.WriteFile(users, []byte("basic_auth_users:\n  main: "+string(hash)+"\n"), 0o600)
	m := newTestManager(t, &fakeRunner{}, "", target("p", "default", Config{}))
	addr := serveAPI(t, m, ServerOptions{WebConfigFile: users})
	url := "http://" + addr + "/v1/tasks/p/exec"
	resp, err := http.Post(url, "", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without basic auth: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", url, strings.NewReader("x"))
	req.SetBasicAuth("main", "test")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("with basic auth: %d", resp.StatusCode)
	}
}

func TestClient(t *testing.T) {
	m := newTestManager(t, &fakeRunner{}, "", target("p", "default", Config{MaxTimeout: time.Hour}), target("m", "x", Config{}))
	srv := httptest.NewServer(Handler(m))
	defer srv.Close()
	c := &Client{HTTP: srv.Client(), Base: srv.URL}
	res, err := c.Exec(t.Context(), "p", "", []byte(`[1,2]`), ExecOptions{Timeout: time.Minute, MaxOutput: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OutputTruncated || res.Text() != "[1," {
		t.Fatalf("result %+v", res)
	}
	if _, err := c.Exec(t.Context(), "m", "x", nil, ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Exec(t.Context(), "nope", "", nil, ExecOptions{})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Kind != "not_found" {
		t.Fatalf("unknown plug: %v", err)
	}
	runs, err := c.Runs(t.Context(), "p", "", 0)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v %v", runs, err)
	}
	tasks, err := c.Tasks(t.Context())
	if err != nil || len(tasks) != 2 {
		t.Fatalf("tasks %v %v", tasks, err)
	}
}
