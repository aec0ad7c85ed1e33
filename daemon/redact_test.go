package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/internal/gittest"
	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/plugs-dev/plugs/internal/mqtttest"
	"github.com/plugs-dev/plugs/internal/syncbuf"
	"github.com/plugs-dev/plugs/render"
)

// vaultPlugin is a plugin with three secret params; it runs until stopped.
const vaultPlugin = `plugin "vault" {
  version = "1.0.0"
  kind    = "script"
  command = ["sh", "-c", "while true; do sleep 1; done"]
  param "token" {
    type   = string
    secret = true
  }
  param "key" {
    type   = string
    secret = true
  }
  param "extra" {
    type   = string
    secret = true
  }
  param "n" {
    type    = number
    default = 1
  }
}
`

// TestNoSecretOnAnySurface plants secrets of every kind in a deployment (a
// secret param written literally in plugs.hcl, one from env(), one from
// file(), a credential in a git source URL, the embedded broker's
// passwords, a task API token), runs a real daemon with its embedded
// broker, dashboard and task API, provokes output on every surface (a
// start, a secret that changes, a plan, an apply, failing configs that
// quote the secrets, API calls with the token and a wrong one), and then
// reads each surface: one row per surface, and none may hold any secret.
func TestNoSecretOnAnySurface(t *testing.T) {
	dir := t.TempDir()
	const (
		literal = "planted-literal-7f3a"
		fromEnv = "planted-env-91c2"
		fromF1  = "planted-file-one-5d0e"
		fromF2  = "planted-file-two-c4b8"
		gitPW   = "planted-git-pw-2e6f"
		token   = "planted-api-token-8a1d"
		lit2    = "planted-unfetched-literal-3b9c"
	)
	secrets := []string{literal, fromEnv, fromF1, fromF2, gitPW, token, lit2}

	// The plugin comes from a git server that wants a password.
	root := t.TempDir()
	repo := gittest.NewRepoIn(t, root, "vault")
	repo.Commit(map[string]string{"plugin.hcl": vaultPlugin})
	repo.Tag("v1.0.0")
	gitURL, err := url.Parse(gittest.HTTP(t, root, "alice", gitPW))
	if err != nil {
		t.Fatal(err)
	}
	gitURL.User = url.UserPassword("alice", gitPW)
	source := "git::" + gitURL.String() + "/vault"

	t.Setenv("REDACT_TEST_KEY", fromEnv)
	writeFile(t, filepath.Join(dir, "secret.txt"), fromF1+"\n")
	for name, content := range sleeperPlugin {
		writeFile(t, filepath.Join(dir, name), content)
	}
	good := fmt.Sprintf(`plug "vault" {
  source = %q
  params = { token = %q, key = env("REDACT_TEST_KEY"), extra = trimspace(file("secret.txt")) }
}

plug "bystander" {
  source = "./plugins/sleeper"
  # A failing check that prints the instance's broker password, as a
  # plugin's "cannot connect with ..." would: status, MQTT and the pages
  # show its output, redacted.
  check "leaky" {
    type     = "exec"
    command  = ["sh", "-c", "grep -o 'password.*' \"$PLUGS_CONFIG\"; exit 1"]
    interval = "200ms"
    timeout  = "200ms"
  }
}
`, source, literal)
	file := filepath.Join(dir, "plugs.hcl")
	writeFile(t, file, good)
	tokens := filepath.Join(dir, "tokens")
	writeFile(t, tokens, token+"\n")
	state := filepath.Join(dir, ".plugs")

	var log syncbuf.Buffer
	logger := slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	apiAddr := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(t))
	c := startDaemon(t, Options{File: file, StateDir: state, NoWatch: true, Logger: logger,
		UIAddr: "127.0.0.1:0", APIAddr: apiAddr, APITokenFile: tokens})
	st := waitStatus(t, c, "vault and bystander running", func(s *api.Status) bool {
		v, b := statusOf(s, "vault", "default"), statusOf(s, "bystander", "default")
		return v != nil && v.PID > 0 && b != nil && b.PID > 0
	})

	// The broker passwords: each instance's (in its config.json) and the
	// reader's, which this test subscribes with.
	for _, inst := range []string{"vault", "bystander"} {
		var cfg struct {
			Broker struct{ Password string } `json:"broker"`
		}
		b, err := os.ReadFile(filepath.Join(layout.InstanceDir(state, inst, "default"), "config.json"))
		if err != nil || json.Unmarshal(b, &cfg) != nil || cfg.Broker.Password == "" {
			t.Fatalf("config.json of %s: %v %s", inst, err, b)
		}
		secrets = append(secrets, cfg.Broker.Password)
		if inst == "vault" && (!strings.Contains(string(b), literal) || !strings.Contains(string(b), fromEnv) || !strings.Contains(string(b), fromF1)) {
			t.Fatalf("the planted secrets are not in vault's config.json: %s", b)
		}
	}
	reader, err := os.ReadFile(filepath.Join(state, "broker", "reader.password"))
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, strings.TrimSpace(string(reader)))

	// Every MQTT message from now on (retained ones too), and the
	// dashboard's event stream.
	mqttMsgs := mqtttest.Subscribe(t, mqtttest.Reader(t, st.Daemon.BrokerURL, state), "#")
	ui := "http://" + st.Daemon.UIAddr
	events := readStream(t, ui+"/events")

	// A secret that changes: the plan shows a change, never the values.
	writeFile(t, filepath.Join(dir, "secret.txt"), fromF2+"\n")
	plan, err := c.Plan(context.Background(), api.PlanRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Empty() {
		t.Errorf("a changed secret is no change in the plan")
	}
	planJSON, _ := json.Marshal(plan)
	planPage := get(t, ui+"/plan")
	applied, err := c.Apply(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	applyJSON, _ := json.Marshal(applied)

	// Failing configs that quote the secrets: a syntax error on the line of
	// the literal secret and of the git credential; a plug whose manifest
	// was never fetched with a literal secret on a line in error; a version
	// that no tag of the credentialed source satisfies.
	var diags []string
	var statusDiags strings.Builder
	fail := func(content string) {
		t.Helper()
		writeFile(t, file, content)
		_, err := c.Apply(context.Background())
		var e *api.Error
		if !errors.As(err, &e) {
			t.Fatalf("apply of a failing config: %v, want an api error", err)
		}
		js, _ := json.Marshal(e)
		diags = append(diags, e.Error(), string(js))
		statusDiags.WriteString(getUnix(t, state, "/v1/status"))
	}
	fail(fmt.Sprintf("plug \"vault\" {\n  source = %q bogus\n}\n", source))
	fail(fmt.Sprintf(`plug "vault" {
  source = %q
  params = { token = %q key = env("REDACT_TEST_KEY") }
}
`, source, literal))
	fail(good + fmt.Sprintf(`
plug "unfetched" {
  source = %q
  params = { token = %q, n = upper(1, 2) }
}
`, source, lit2))
	fail(strings.Replace(good, "params =", "version = \"~> 9.0\"\n  params =", 1))
	writeFile(t, file, good)
	if _, err := c.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}

	// The task API with the right token and a wrong one that holds it.
	var taskAPI strings.Builder
	for _, auth := range []string{"Bearer " + token, "Bearer " + token + "x", "Basic " + token} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+apiAddr+"/v1/tasks", nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&taskAPI, "%s %v\n%s\n", resp.Status, resp.Header, readAll(resp))
	}

	st = waitStatus(t, c, "vault and bystander running, bystander's check failing with its output redacted", func(s *api.Status) bool {
		v, b := statusOf(s, "vault", "default"), statusOf(s, "bystander", "default")
		return v != nil && v.PID > 0 && b != nil && b.PID > 0 && b.Health != nil &&
			strings.Contains(b.Health.LastFailure, "password") && strings.Contains(b.Health.LastFailure, render.Sensitive)
	})

	var pages strings.Builder
	for _, p := range []string{"/", "/instances", "/instances/vault/default", "/instances/bystander/default",
		"/instances/vault/default/restart", "/plugins", "/plan", "/history", "/tasks"} {
		fmt.Fprintf(&pages, "== %s\n%s\n", p, get(t, ui+p))
	}
	environ := func(plug string) string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", statusOf(st, plug, "default").PID))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	statusJSON := getUnix(t, state, "/v1/status")

	// Drain what was published so far: the last failing reconcile and the
	// good one after it are among it.
	var published strings.Builder
	deadline := time.After(2 * time.Second)
drain:
	for {
		select {
		case m := <-mqttMsgs:
			fmt.Fprintf(&published, "%s %s\n", m.Topic, m.Payload)
		case <-deadline:
			break drain
		}
	}

	surfaces := []struct {
		name, text string
		want       string // a sign that the surface was read at all
	}{
		{"daemon log", log.String(), `"msg"`},
		{"status API JSON", statusJSON, `"instances"`},
		{"status API JSON after each failing config", statusDiags.String(), `"diagnostics"`},
		{"plan JSON (plan text renders these fields)", string(planJSON), `"changes"`},
		{"plan page", planPage, "vault"},
		{"apply report", string(applyJSON), `"vault"`},
		{"diagnostics of failing configs", strings.Join(diags, "\n"), "Missing attribute separator"},
		{"metrics exposition", scrape(t, st.Daemon.MetricsAddr), "plugs_plug_info{"},
		{"MQTT (every topic)", published.String(), "/reconcile"},
		{"dashboard pages", pages.String(), "bystander"},
		{"dashboard event stream", events(), "id: 1"},
		{"task API", taskAPI.String(), "401"},
		{"environment of another plug's process", environ("bystander"), "PLUGS_CONFIG="},
		{"environment of the plug's own process", environ("vault"), "PLUGS_CONFIG="},
	}
	for _, s := range surfaces {
		t.Run(s.name, func(t *testing.T) {
			if !strings.Contains(s.text, s.want) {
				t.Errorf("%s lacks %q: not read?\n%.3000s", s.name, s.want, s.text)
			}
			for _, secret := range secrets {
				if i := strings.Index(s.text, secret); i >= 0 {
					lo, hi := max(0, i-300), min(len(s.text), i+len(secret)+100)
					t.Errorf("%s holds the secret %q:\n…%s…", s.name, secret, s.text[lo:hi])
				}
			}
		})
	}
}

// get returns the body of a GET of url (any status).
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	return readAll(resp)
}

// getUnix returns the body of a GET of path on the daemon's socket.
func getUnix(t *testing.T, stateDir, path string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", api.SocketPath(stateDir))
	}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://plugs" + path)
	if err != nil {
		t.Fatal(err)
	}
	return readAll(resp)
}

// readStream reads an event stream in the background until the returned
// function is called, which returns what arrived.
func readStream(t *testing.T, url string) func() string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var buf syncbuf.Buffer
	var wg sync.WaitGroup
	wg.Go(func() {
		r := bufio.NewReader(resp.Body)
		_, _ = io.Copy(&buf, r)
	})
	var once sync.Once
	stop := func() string {
		once.Do(func() {
			cancel()
			resp.Body.Close()
			wg.Wait()
		})
		return buf.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}
