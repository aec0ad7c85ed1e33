package ui

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/plugs-dev/plugs/render"
	"golang.org/x/crypto/bcrypt"
)

func TestMain(m *testing.M) {
	if os.Getenv(peerClientEnv) != "" {
		os.Exit(peerClient()) // the test binary as another user's client (peer_test.go)
	}
	goleak.VerifyTestMain(m)
}

func TestSensitiveIsRenders(t *testing.T) {
	if sensitive != render.Sensitive {
		t.Fatalf("sensitive = %q, render.Sensitive = %q", sensitive, render.Sensitive)
	}
}

type harness struct {
	t   *testing.T
	f   *fakeBackend
	s   *Server
	srv *httptest.Server
	c   *http.Client
}

func newHarness(t *testing.T, n int) *harness {
	t.Helper()
	f := newFake(n)
	s, err := New(Options{Backend: f, ProcRoot: "-", Coalesce: time.Millisecond, Hostname: "test-host"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	jar, _ := cookiejar.New(nil)
	h := &harness{t: t, f: f, s: s, srv: srv, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	t.Cleanup(func() {
		srv.CloseClientConnections()
		s.Close()
		srv.Close()
	})
	return h
}

func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	resp, err := h.c.Get(h.srv.URL + path)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func (h *harness) post(path string, form url.Values, hdr map[string]string) *http.Response {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestPagesShowInstancesAndNoSecret(t *testing.T) {
	h := newHarness(t, 12)
	pages := map[string][]string{
		"/":                            {"Config revision", "0123456789abcdef", "/srv/plugs/plugs.hcl", "plug-00", "connected"},
		"/instances":                   {"plug-03/inst-0003", "plug-01/inst-0011", "12</span> of 12 instances shown"},
		"/instances/plug-03/inst-0003": {"plug-03/inst-0003", "(sensitive)", "hello from plug-03/inst-0003", "TOKEN", "Restart…", "Stop…", "Kill…"},
		"/plugins":                     {"heart-rate", "Pair it first.", "interval", "secret"},
		"/plan":                        {"plug-00/inst-0000", "config changed", "0 to start, 1 to replace"},
		"/history":                     {"ok"},
	}
	for path, want := range pages {
		code, body := h.get(path)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d\n%s", path, code, body)
			continue
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s: no %q in the page", path, w)
			}
		}
		if strings.Contains(body, plantedSecret) {
			t.Errorf("GET %s: the planted secret is in the page", path)
		}
	}
	if code, _ := h.get("/instances/nope/none"); code != http.StatusNotFound {
		t.Errorf("unknown instance: %d, want 404", code)
	}
}

func TestBadConfigShowsDiagnostic(t *testing.T) {
	h := newHarness(t, 2)
	diag := "Error: Unsupported argument\n\n  on plugs.hcl line 4:\n   4:   bogus = 1\n\nAn argument named \"bogus\" is not expected here."
	h.f.mu.Lock()
	h.f.status.Daemon.LastReconcile = &ReconcileStatus{At: time.Now(), Error: diag}
	h.f.planErr = errors.New(diag)
	h.f.mu.Unlock()
	for _, path := range []string{"/", "/plan", "/history"} {
		_, body := h.get(path)
		if !strings.Contains(body, "Unsupported argument") || !strings.Contains(body, "  on plugs.hcl line 4:") {
			t.Errorf("GET %s does not show the diagnostic:\n%s", path, body)
		}
	}
}

func TestFilterAndSort(t *testing.T) {
	h := newHarness(t, 30)
	_, body := h.get("/instances?q=plug-07")
	if n := strings.Count(body, `<tr id="i-`); n != 3 {
		t.Errorf("filter plug-07: %d rows, want 3", n)
	}
	h.f.Stop(context.Background(), InstanceID{Plug: "plug-01", Instance: "inst-0001"})
	_, body = h.get("/instances?state=stopped")
	if n := strings.Count(body, `<tr id="i-`); n != 1 || !strings.Contains(body, "inst-0001") {
		t.Errorf("state=stopped: %d rows", n)
	}
	_, body = h.get("/instances?sort=pid&desc=1")
	pids := regexp.MustCompile(`data-pid="(\d+)"`).FindAllStringSubmatch(body, -1)
	for i := 1; i < len(pids); i++ {
		if len(pids[i-1][1]) < len(pids[i][1]) || (len(pids[i-1][1]) == len(pids[i][1]) && pids[i-1][1] < pids[i][1]) {
			t.Fatalf("sort=pid desc: %s before %s", pids[i-1][1], pids[i][1])
		}
	}
	if !strings.Contains(body, `aria-sort="descending"`) {
		t.Error("the sorted column has no aria-sort")
	}
}

func TestActionsNeedConfirmationAndCSRF(t *testing.T) {
	h := newHarness(t, 3)
	id := InstanceID{Plug: "plug-01", Instance: "inst-0001"}
	path := "/instances/plug-01/inst-0001/restart"

	// No cookie, no token.
	if resp := h.post(path, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST without token: %d, want 403", resp.StatusCode)
	}
	_, body := h.get(path) // the confirmation page sets the cookie
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("confirmation page has no token:\n%s", body)
	}
	if resp := h.post(path, url.Values{"csrf": {"0000" + m[1][4:]}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST with a wrong token: %d, want 403", resp.StatusCode)
	}
	if resp := h.post(path, url.Values{"csrf": {m[1]}}, map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", resp.StatusCode)
	}
	if resp := h.post(path, url.Values{"csrf": {m[1]}}, map[string]string{"Origin": "http://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST from another origin: %d, want 403", resp.StatusCode)
	}
	if len(h.f.restarts) != 0 {
		t.Fatalf("a refused request restarted %v", h.f.restarts)
	}
	resp := h.post(path, url.Values{"csrf": {m[1]}}, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/instances/plug-01/inst-0001?done=restart" {
		t.Fatalf("POST with token: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if len(h.f.restarts) != 1 || h.f.restarts[0] != id {
		t.Fatalf("restarted %v, want [%v]", h.f.restarts, id)
	}
	_, body = h.get("/instances/plug-01/inst-0001?done=restart")
	if !strings.Contains(body, "plug-01/inst-0001 restarted.") {
		t.Error("no notice after the restart")
	}

	// A token of another browser's cookie is refused.
	other := newHarness(t, 1)
	_, ob := other.get("/instances/plug-00/inst-0000/restart")
	om := csrfRE.FindStringSubmatch(ob)
	if resp := h.post("/instances/plug-00/inst-0000/kill", url.Values{"csrf": {om[1]}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another server's token: %d, want 403", resp.StatusCode)
	}

	// Stop is an override shown as such.
	_, body = h.get("/instances/plug-02/inst-0002/stop")
	m = csrfRE.FindStringSubmatch(body)
	if resp := h.post("/instances/plug-02/inst-0002/stop", url.Values{"csrf": {m[1]}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("stop: %d", resp.StatusCode)
	}
	_, body = h.get("/instances")
	if !strings.Contains(body, "stopped by hand") {
		t.Error("the instances page does not show the stop override")
	}
	_, body = h.get("/instances/plug-02/inst-0002")
	if !strings.Contains(body, `data-action="start"`) || strings.Contains(body, `data-action="kill"`) {
		t.Error("a stopped instance's page should offer start, and not kill")
	}

	// Apply, from the plan page.
	_, body = h.get("/plan")
	m = csrfRE.FindStringSubmatch(body)
	if resp := h.post("/plan/apply", url.Values{"csrf": {m[1]}}, nil); resp.StatusCode != http.StatusOK || h.f.applied != 1 {
		t.Fatalf("apply: %d, applied %d", resp.StatusCode, h.f.applied)
	}
	if resp := h.post("/plan/apply", nil, nil); resp.StatusCode != http.StatusForbidden || h.f.applied != 1 {
		t.Errorf("apply without token: %d", resp.StatusCode)
	}
}

// sse reads events from a stream.
type sse struct {
	body io.ReadCloser
	r    *bufio.Reader
}

func (h *harness) stream(path string) *sse {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.srv.URL+path, nil)
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		h.t.Fatalf("GET %s: content type %q", path, ct)
	}
	h.t.Cleanup(func() { cancel(); resp.Body.Close() })
	return &sse{body: resp.Body, r: bufio.NewReader(resp.Body)}
}

// next returns the next event's name and data, skipping comments and
// events without a name.
func (e *sse) next() (string, string, error) {
	var name string
	var data []string
	for {
		line, err := e.r.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if name != "" {
				return name, strings.Join(data, "\n"), nil
			}
			data = nil
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[len("data: "):])
		}
	}
}

// until reads events until one named name contains want; the stream's
// end fails the test.
func (e *sse) until(t *testing.T, name, want string) string {
	t.Helper()
	for range 100 {
		n, d, err := e.next()
		if err != nil {
			t.Fatalf("waiting for %s event with %q: %v", name, want, err)
		}
		if n == name && strings.Contains(d, want) {
			return d
		}
	}
	t.Fatalf("no %s event with %q in 100 events", name, want)
	return ""
}

func TestEventsSendChangedRowsOnly(t *testing.T) {
	h := newHarness(t, 20)
	id := InstanceID{Plug: "plug-05", Instance: "inst-0005"}
	ev := h.stream("/events?instance=plug-05%2Finst-0005")
	list := h.stream("/events")
	if err := h.f.crash(id, "SIGSEGV"); err != nil {
		t.Fatal(err)
	}
	h.s.Notify()
	if d := ev.until(t, "patch", domID("d-", id)); !strings.Contains(d, "killed by SIGSEGV") {
		t.Errorf("the detail panel lacks the exit:\n%s", d)
	}
	d := ev.until(t, "patch", domID("i-", id))
	if !strings.Contains(d, "killed by SIGSEGV") {
		t.Errorf("the row lacks the exit:\n%s", d)
	}
	if n := strings.Count(d, "<tr id="); n != 1 {
		t.Errorf("patch has %d rows, want only the changed one:\n%s", n, d)
	}
	if strings.Contains(d, plantedSecret) {
		t.Error("the planted secret is in an event")
	}
	if d := list.until(t, "patch", domID("i-", id)); strings.Contains(d, domID("d-", id)) {
		t.Error("a stream that watches no instance got a detail panel")
	}
	// The instance set changes: a refresh.
	h.f.mu.Lock()
	h.f.instances = h.f.instances[1:]
	h.f.mu.Unlock()
	h.s.Notify()
	ev.until(t, "refresh", "instances changed")
}

// TestExitsRememberedWithoutReadingEveryInstance: while no page watches,
// an instance's change that names it (NotifyInstance, the daemon's on
// every start and exit) is remembered without Backend.Observe, which
// copies every instance; a plain Notify still reads them all, so that no
// exit is lost either way.
func TestExitsRememberedWithoutReadingEveryInstance(t *testing.T) {
	h := newHarness(t, 20)
	id := InstanceID{Plug: "plug-05", Instance: "inst-0005"}
	before := h.f.observes.Load()
	for _, sig := range []string{"SIGSEGV", "SIGABRT"} {
		if err := h.f.crash(id, sig); err != nil {
			t.Fatal(err)
		}
		h.f.mu.Lock()
		var o InstanceStatus
		for _, i := range h.f.instances {
			if i.ID == id {
				o = i
			}
		}
		h.f.mu.Unlock()
		h.s.NotifyInstance(o)
		time.Sleep(20 * time.Millisecond) // time for the hub's diffs (1 ms coalesce) to run
	}
	if n := h.f.observes.Load() - before; n != 0 {
		t.Errorf("NotifyInstance read every instance %d times, want none", n)
	}
	// A plain Notify: the hub reads every instance to find the exit.
	for _, sig := range []string{"SIGBUS", "SIGILL"} {
		if err := h.f.crash(id, sig); err != nil {
			t.Fatal(err)
		}
		n := h.f.observes.Load()
		h.s.Notify()
		for i := 0; h.f.observes.Load() == n; i++ {
			if i == 500 {
				t.Fatal("a plain Notify never read the instances")
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	_, body := h.get("/instances/plug-05/inst-0005")
	for _, sig := range []string{"SIGSEGV", "SIGABRT", "SIGBUS", "SIGILL"} {
		if !strings.Contains(body, "killed by "+sig) {
			t.Errorf("the instance page lacks the exit by %s", sig)
		}
	}
}

func TestLogStream(t *testing.T) {
	h := newHarness(t, 2)
	id := InstanceID{Plug: "plug-01", Instance: "inst-0001"}
	ev := h.stream("/instances/plug-01/inst-0001/log")
	// The follower may not have started yet: append until a line arrives.
	done := make(chan string, 1)
	go func() {
		_, d, err := ev.next()
		if err != nil {
			d = err.Error()
		}
		done <- d
	}()
	var got string
	for i := 0; got == "" && i < 200; i++ {
		h.f.appendLog(id, "<b>line</b> "+strings.Repeat("x", i%2)+"\n")
		select {
		case got = <-done:
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !strings.Contains(got, "&lt;b&gt;line&lt;/b&gt;") {
		t.Fatalf("log event: %q", got)
	}
}

func TestCloseEndsStreams(t *testing.T) {
	h := newHarness(t, 1)
	ev := h.stream("/events")
	h.s.Close()
	for range 10 {
		if _, _, err := ev.next(); err != nil {
			return
		}
	}
	t.Fatal("the stream goes on after Close")
}

func TestListenRefusesOpenAddressWithoutAuth(t *testing.T) {
	dir := t.TempDir()
	noAuth := filepath.Join(dir, "tls-only.yml")
	os.WriteFile(noAuth, []byte("http_server_config:\n  http2: false\n"), 0o600)
	for _, tc := range []struct{ addr, file string }{{"0.0.0.0:0", ""}, {":0", ""}, {"[::]:0", ""}, {"192.0.2.1:0", noAuth}} {
		if l, err := Listen(tc.addr, tc.file); err == nil {
			l.Close()
			t.Errorf("Listen(%q, %q) listened", tc.addr, tc.file)
		} else if !strings.Contains(err.Error(), "not loopback-only") {
			t.Errorf("Listen(%q): %v", tc.addr, err)
		}
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	auth := filepath.Join(dir, "auth.yml")
	os.WriteFile(auth, []byte("basic_auth_users:\n  admin: "+string(hash)+"\n"), 0o600)
	if ok, err := requiresAuth(auth); !ok || err != nil {
		t.Errorf("requiresAuth(basic auth) = %v, %v", ok, err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "localhost:1": true, "[::1]:1": true, "0.0.0.0:1": false, ":1": false, "10.1.2.3:1": false} {
		if got := loopbackOnly(addr); got != want {
			t.Errorf("loopbackOnly(%q) = %v", addr, got)
		}
	}
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("nonsense: [\n"), 0o600)
	if _, err := Listen("127.0.0.1:0", bad); err == nil {
		t.Error("a broken web config was accepted")
	}
}

func TestServeBasicAuth(t *testing.T) {
	f := newFake(2)
	s, err := New(Options{Backend: f, ProcRoot: "-"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	cfg := filepath.Join(t.TempDir(), "web.yml")
	os.WriteFile(cfg, []byte("basic_auth_users:\n  admin: "+string(hash)+"\n"), 0o600)
	l, err := Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, l, cfg) }()
	base := "http://" + l.Addr().String()
	get := func(user, pass string) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/instances", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("", ""); c != http.StatusUnauthorized {
		t.Errorf("no credentials: %d", c)
	}
	if c := get("admin", "wrong"); c != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", c)
	}
	if c := get("admin", "pw"); c != http.StatusOK {
		t.Errorf("right password: %d", c)
	}
	// An open event stream does not hold the shutdown up.
	req, _ := http.NewRequest(http.MethodGet, base+"/events", nil)
	req.SetBasicAuth("admin", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("stream end: %v", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestStaticAssetsAreVersionedAndCached(t *testing.T) {
	h := newHarness(t, 1)
	_, body := h.get("/")
	m := regexp.MustCompile(`src="(/static/htmx-[^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no htmx script in the page")
	}
	resp, err := h.c.Get(h.srv.URL + strings.ReplaceAll(m[1], "&amp;", "&"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("htmx: %d %q %q", resp.StatusCode, resp.Header.Get("Cache-Control"), resp.Header.Get("Content-Type"))
	}
	if code, _ := h.get("/static/nope.js"); code != 404 {
		t.Errorf("missing asset: %d", code)
	}
	for _, lic := range []string{"/static/LICENSE.htmx", "/static/LICENSE.htmx-ext-sse"} {
		if code, body := h.get(lic); code != 200 || !strings.Contains(body, "Permission to use") {
			t.Errorf("%s: %d", lic, code)
		}
	}
}

func TestHealthAndTasks(t *testing.T) {
	f := &fakeFull{fakeBackend: newFake(3)}
	s, err := New(Options{Backend: f, ProcRoot: "-"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	h := &harness{t: t, f: f.fakeBackend, s: s, srv: srv, c: &http.Client{Jar: jar}}

	_, body := h.get("/instances")
	for _, want := range []string{`href="/instances?sort=health"`, "health-healthy", "health-unhealthy", `href="/tasks"`} {
		if !strings.Contains(body, want) {
			t.Errorf("instances page: no %q", want)
		}
	}
	_, body = h.get("/instances/plug-01/inst-0001")
	if !strings.Contains(body, `data-testid="health">unhealthy`) || !strings.Contains(body, "failing") {
		t.Error("the instance page does not show its failing check")
	}
	_, body = h.get("/tasks")
	if !strings.Contains(body, "report/default") || !strings.Contains(body, "every 1h") {
		t.Errorf("tasks page:\n%s", body)
	}
	_, body = h.get("/tasks/report/default")
	m := csrfRE.FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, "r0") {
		t.Fatalf("task page:\n%s", body)
	}
	resp := h.post("/tasks/report/default/run", url.Values{"csrf": {m[1]}, "input": {`{"day":"2026-12-01"}`}}, nil)
	if resp.StatusCode != http.StatusOK || len(f.inputs) != 1 || f.inputs[0] != `{"day":"2026-12-01"}` {
		t.Fatalf("run now: %d, inputs %q", resp.StatusCode, f.inputs)
	}
	if resp := h.post("/tasks/report/default/run", url.Values{"input": {"x"}}, nil); resp.StatusCode != http.StatusForbidden || len(f.inputs) != 1 {
		t.Errorf("run now without a token: %d", resp.StatusCode)
	}
	// Without the interfaces: no health column, no tasks.
	plain := newHarness(t, 2)
	if _, body := plain.get("/instances"); strings.Contains(body, "sort=health") || strings.Contains(body, `href="/tasks"`) {
		t.Error("a backend without health or tasks shows them")
	}
	if code, _ := plain.get("/tasks"); code != http.StatusNotFound {
		t.Errorf("tasks page without tasks: %d", code)
	}
}
