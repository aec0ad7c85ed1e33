package daemon

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/internal/tlstest"
	"github.com/plugs-dev/plugs/task"
)

// TestTaskAPIOverTLS serves --api-addr with the TLS of --web-config-file
// and bearer tokens on a real daemon, and calls it as a main server would.
func TestTaskAPIOverTLS(t *testing.T) {
	dir := t.TempDir()
	file := echoTaskDeployment(t, dir, "")
	certFile, keyFile, cert := tlstest.SelfSigned(t, dir)
	webCfg := filepath.Join(dir, "web.yml")
	writeFile(t, webCfg, "tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n")
	tokens := filepath.Join(dir, "tokens")
	writeFile(t, tokens, "# the main server\nmain-server-token\n")
	stateDir := filepath.Join(dir, ".plugs")
	c := startDaemon(t, Options{File: file, StateDir: stateDir, NoWatch: true, APIAddr: "127.0.0.1:0",
		APITokenFile: tokens, WebConfigFile: webCfg, Logger: testLogger(t)})
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	addr := st.Daemon.APIAddr
	if addr == "" || strings.HasSuffix(addr, ":0") {
		t.Fatalf("status api_addr %q", addr)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	https := &http.Client{Transport: tr}
	url := "https://" + addr + "/v1/tasks/echo/exec"
	post := func(c *http.Client, url, auth string) (int, string, error) {
		req, _ := http.NewRequest("POST", url, strings.NewReader(`{"n": 1}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		return resp.StatusCode, readAll(resp), nil
	}

	code, body, err := post(https, url, "Bearer main-server-token")
	if err != nil || code != 200 {
		t.Fatalf("https with the token: %d %s %v", code, body, err)
	}
	var res task.Result
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.Result != task.ResultSuccess || compact(res.Output) != `{"got":{"n":1},"trigger":"call"}` {
		t.Fatalf("answer %s: %v", body, err)
	}
	for _, auth := range []string{"", "Bearer guess", "Bearer main-server-token-and-more", "Basic bWFpbjp0ZXN0", "main-server-token"} {
		if code, body, err := post(https, url, auth); err != nil || code != http.StatusUnauthorized {
			t.Errorf("https with Authorization %q: %d %s %v, want 401", auth, code, body, err)
		}
	}
	// A client that does not trust the certificate does not get through.
	if _, _, err := post(&http.Client{}, url, "Bearer main-server-token"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("https with an untrusted certificate: %v", err)
	}
	// Plain HTTP to the TLS port is not served (Go answers 400 to it).
	if code, body, err := post(http.DefaultClient, "http://"+addr+"/v1/tasks/echo/exec", "Bearer main-server-token"); err == nil && code == 200 {
		t.Errorf("plain http to the TLS port: %d %s", code, body)
	}
	if n := runCount(t, dir); n != 1 {
		t.Fatalf("%d runs, want 1: only the authenticated https call runs", n)
	}
	runs, err := task.UnixClient(api.SocketPath(stateDir)).Runs(t.Context(), "echo", "", 0)
	if err != nil || len(runs) != 1 || runs[0].RunID != res.RunID {
		t.Fatalf("history %+v %v", runs, err)
	}
}

func compact(b []byte) string {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return string(b)
	}
	return out.String()
}

// TestTaskAPIRefusedWithoutAuth: plugs run refuses to serve the task API
// on a non-loopback address without authentication (TLS alone is not),
// and with both tokens and basic auth (one Authorization header cannot
// carry both); nothing is left running.
func TestTaskAPIRefusedWithoutAuth(t *testing.T) {
	dir := t.TempDir()
	file := echoTaskDeployment(t, dir, "")
	certFile, keyFile, _ := tlstest.SelfSigned(t, dir)
	tlsOnly := filepath.Join(dir, "tls.yml")
	writeFile(t, tlsOnly, "tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n")
	users := filepath.Join(dir, "users.yml")
	// password "test", bcrypt
	writeFile(t, users, "basic_auth_users:\n  main: $2y$10$X0h1gDsPszWURQaxFN8ZOe.oCLCQW3N3lnr8DAzyhD0L9QbsGmWc.\n")
	tokens := filepath.Join(dir, "tokens")
	writeFile(t, tokens, "t0ken\n")
	for _, tc := range []struct {
		name       string
		addr       string
		web, token string
		want       string
	}{
		{"all interfaces, no auth", "0.0.0.0:0", "", "", "without authentication"},
		{"empty host, no auth", ":0", "", "", "without authentication"},
		{"TLS is not authentication", "0.0.0.0:0", tlsOnly, "", "without authentication"},
		{"tokens and basic auth", "127.0.0.1:0", users, tokens, "one Authorization header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stateDir := filepath.Join(t.TempDir(), ".plugs")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				errc <- Run(ctx, Options{File: file, StateDir: stateDir, NoWatch: true, APIAddr: tc.addr,
					WebConfigFile: tc.web, APITokenFile: tc.token, MetricsAddr: "127.0.0.1:0", BrokerAddr: "127.0.0.1:0"})
			}()
			var err error
			select {
			case err = <-errc:
			case <-time.After(20 * time.Second):
				cancel()
				<-errc
				t.Fatal("the daemon started: it should have refused")
			}
			var ae *api.Error
			if !errors.As(err, &ae) || ae.Kind != api.KindInput || !strings.Contains(ae.Message, tc.want) {
				t.Fatalf("Run = %v, want an input error saying %q", err, tc.want)
			}
			if n := runCount(t, dir); n != 0 {
				t.Fatalf("%d runs", n)
			}
		})
	}
}

// TestTaskAPIClientCertificates: a running daemon serves the task API on
// all interfaces with client_auth_type RequireAndVerifyClientCert as its
// only authentication (no tokens): a call with a certificate of the
// configured CA runs; one without a certificate, with one of another CA,
// or with an expired one of the right CA is refused in the handshake and
// runs nothing.
func TestTaskAPIClientCertificates(t *testing.T) {
	dir := t.TempDir()
	file := echoTaskDeployment(t, dir, "")
	certFile, keyFile, serverCert := tlstest.SelfSigned(t, dir)
	ca := tlstest.NewCA(t, dir, "clients")
	other := tlstest.NewCA(t, dir, "other")
	webCfg := filepath.Join(dir, "web.yml")
	writeFile(t, webCfg, "tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+
		"\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: "+ca.File+"\n")
	stateDir := filepath.Join(dir, ".plugs")
	c := startDaemon(t, Options{File: file, StateDir: stateDir, NoWatch: true, APIAddr: "0.0.0.0:0",
		WebConfigFile: webCfg, Logger: testLogger(t)})
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(st.Daemon.APIAddr)
	if err != nil || port == "0" {
		t.Fatalf("status api_addr %q: %v", st.Daemon.APIAddr, err)
	}
	url := "https://127.0.0.1:" + port + "/v1/tasks/echo/exec"
	roots := x509.NewCertPool()
	roots.AddCert(serverCert)
	call := func(certs ...tls.Certificate) (int, string, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Post(url, "application/json", strings.NewReader(`{"n": 2}`))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		return resp.StatusCode, readAll(resp), nil
	}

	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
	}{
		{"no certificate", nil},
		{"a certificate of another CA", []tls.Certificate{other.Client(t, "main", time.Time{}, time.Time{})}},
		{"an expired certificate of the CA", []tls.Certificate{ca.Client(t, "main", time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))}},
		{"a certificate not yet valid", []tls.Certificate{ca.Client(t, "main", time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))}},
	} {
		code, body, err := call(tc.certs...)
		if err == nil {
			t.Errorf("%s: %d %s, want a refused handshake", tc.name, code, body)
		} else if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: %v, want a certificate error", tc.name, err)
		}
	}
	if n := runCount(t, dir); n != 0 {
		t.Fatalf("%d runs after the refused calls, want 0", n)
	}

	code, body, err := call(ca.Client(t, "main", time.Time{}, time.Time{}))
	if err != nil || code != http.StatusOK {
		t.Fatalf("a call with the CA's client certificate: %d %s %v", code, body, err)
	}
	var res task.Result
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.Result != task.ResultSuccess || compact(res.Output) != `{"got":{"n":2},"trigger":"call"}` {
		t.Fatalf("answer %s: %v", body, err)
	}
	if n := runCount(t, dir); n != 1 {
		t.Fatalf("%d runs, want 1: only the call with the right certificate", n)
	}
}
