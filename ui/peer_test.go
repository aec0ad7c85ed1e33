package ui

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// peerClientEnv, set to a dashboard's base URL, makes the test binary a
// client (TestMain): it GETs the page PLUGS_UI_TEST_PEER_PAGE for its cookie
// and CSRF token, POSTs the form to PLUGS_UI_TEST_PEER_POST (with the
// input PLUGS_UI_TEST_PEER_INPUT) as a browser of the same origin would, and
// prints the status code on a line, then the body.
const peerClientEnv = "PLUGS_UI_TEST_PEER_CLIENT"

func peerClient() int {
	base := os.Getenv(peerClientEnv)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(base + os.Getenv("PLUGS_UI_TEST_PEER_PAGE"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfRE.FindSubmatch(page)
	if resp.StatusCode != http.StatusOK || m == nil {
		fmt.Fprintf(os.Stderr, "GET %s: %d, no CSRF token\n", os.Getenv("PLUGS_UI_TEST_PEER_PAGE"), resp.StatusCode)
		return 2
	}
	form := url.Values{"csrf": {string(m[1])}}
	if in := os.Getenv("PLUGS_UI_TEST_PEER_INPUT"); in != "" {
		form.Set("input", in)
	}
	req, _ := http.NewRequest(http.MethodPost, base+os.Getenv("PLUGS_UI_TEST_PEER_POST"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err = c.Do(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%d\n%s", resp.StatusCode, body)
	return 0
}

// setupFake is the fake with tasks and setup.
type setupFake struct {
	*fakeFull
	setups int // guarded by fakeBackend.mu
}

var _ SetupRunner = (*setupFake)(nil)

func (f *setupFake) Setup(ctx context.Context, id InstanceID, out io.Writer) error {
	f.mu.Lock()
	f.setups++
	f.mu.Unlock()
	fmt.Fprintf(out, "set up %s\n", id)
	return nil
}

// state is everything an action could change.
func (f *setupFake) state() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, o := range f.instances {
		fmt.Fprintf(&b, "%s %s pid=%d restarts=%d\n", o.ID, o.State, o.PID, o.Restarts)
	}
	fmt.Fprintf(&b, "overrides=%v restarts=%v applied=%d inputs=%q setups=%d", f.overrides, f.restarts, f.applied, f.inputs, f.setups)
	return b.String()
}

// peerActions is every action of the dashboard: the page that carries its
// form, where it posts, and the answer when it is allowed.
var peerActions = []struct {
	name, page, post, input string
	ok                      int
}{
	{"stop", "/instances/plug-00/inst-0000/stop", "/instances/plug-00/inst-0000/stop", "", http.StatusSeeOther},
	{"start", "/instances/plug-01/inst-0001/start", "/instances/plug-01/inst-0001/start", "", http.StatusSeeOther},
	{"restart", "/instances/plug-02/inst-0002/restart", "/instances/plug-02/inst-0002/restart", "", http.StatusSeeOther},
	{"kill", "/instances/plug-03/inst-0003/kill", "/instances/plug-03/inst-0003/kill", "", http.StatusSeeOther},
	{"setup", "/instances/plug-04/inst-0004/setup", "/instances/plug-04/inst-0004/setup", "", http.StatusOK},
	{"apply", "/plan", "/plan/apply", "", http.StatusOK},
	// The task page shows its runs (privateRead): the token comes from another page, as it may (it is the session's).
	{"run task", "/plan", "/tasks/report/default/run", `{"day":"x"}`, http.StatusOK},
}

// serveLoopback serves s as plugs run does by default: on 127.0.0.1,
// without a web config file.
func serveLoopback(t *testing.T, s *Server) string {
	t.Helper()
	l, err := Listen("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, l, "") }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	})
	return "http://" + l.Addr().String()
}

func newSetupFake() *setupFake {
	return &setupFake{fakeFull: &fakeFull{fakeBackend: newFake(5)}}
}

// TestActionsOnlyForRootAndDaemonUID: on the default loopback listener
// without authentication, a client process of another local user (a
// throwaway account made with useradd) reads the pages but every action it
// posts, with a valid cookie and token, is refused with 403 and changes
// nothing; the same posts from the test's own uid (root) are done.
func TestActionsOnlyForRootAndDaemonUID(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: it makes a user and runs a client as that user")
	}
	useradd, err := exec.LookPath("useradd")
	if err != nil {
		t.Skip("no useradd")
	}
	name := "plugsui" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command(useradd, "-M", "-N", "-s", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v\n%s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)

	// The test binary, where the other user may run it (go test's build
	// folder is 0700).
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "plugs-ui-peer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "client")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	f := newSetupFake()
	s, err := New(Options{Backend: f, ProcRoot: "-"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := serveLoopback(t, s)

	// client posts one action as cred (nil: the test's own uid).
	client := func(page, post, input string, cred *syscall.Credential) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin)
		cmd.Dir = dir
		cmd.Env = []string{"GORACE=atexit_sleep_ms=0", peerClientEnv + "=" + base, "PLUGS_UI_TEST_PEER_PAGE=" + page,
			"PLUGS_UI_TEST_PEER_POST=" + post, "PLUGS_UI_TEST_PEER_INPUT=" + input}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("client %s: %v\n%s", post, err, stderr.String())
		}
		code, body, _ := strings.Cut(string(out), "\n")
		n, _ := strconv.Atoi(code)
		return n, body
	}
	other := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}

	before := f.state()
	for _, a := range peerActions {
		code, body := client(a.page, a.post, a.input, other)
		if code != http.StatusForbidden {
			t.Errorf("%s as uid %d: %d, want 403\n%s", a.name, uid, code, body)
			continue
		}
		for _, want := range []string{"came from uid " + u.Uid + ".", "acts only for root (the daemon", "Use the CLI as root", "basic_auth_users"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s as uid %d: the 403 page does not say %q:\n%s", a.name, uid, want, body)
			}
		}
	}
	if after := f.state(); after != before {
		t.Fatalf("refused actions changed the backend:\nbefore %s\nafter  %s", before, after)
	}

	for _, a := range peerActions {
		if code, body := client(a.page, a.post, a.input, nil); code != a.ok {
			t.Errorf("%s as uid 0: %d, want %d\n%s", a.name, code, a.ok, body)
		}
	}
	after := f.state()
	for _, want := range []string{"plug-00/inst-0000 stopped", "restarts=[plug-02/inst-0002]", "applied=1", `inputs=["{\"day\":\"x\"}"]`, "setups=1"} {
		if !strings.Contains(after, want) {
			t.Errorf("after the actions as root, the backend lacks %q:\n%s", want, after)
		}
	}
}

// TestActionsPeerPolicy: the rule with the peer's uid given, over a real
// loopback connection: root and the daemon's uid act; another uid, and a
// peer whose uid cannot be read, get the 403 page and change nothing;
// pages stay open to all of them.
func TestActionsPeerPolicy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		uid    uint32
		err    error
		ok     bool
		reason string
	}{
		{name: "root", uid: 0, ok: true},
		{name: "daemon's uid", uid: 4243, ok: true},
		{name: "another uid", uid: 4242, reason: "came from uid 4242. Without authentication the dashboard acts only for root and the daemon"},
		{name: "unknown", err: fmt.Errorf("no socket table"), reason: "could not tell which user sent this request (no socket table)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSetupFake()
			s, err := New(Options{Backend: f, ProcRoot: "-"})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var (
				mu    sync.Mutex
				asked []netip.AddrPort
			)
			s.ownUID = 4243
			s.peerUID = func(local, remote netip.AddrPort) (uint32, error) {
				mu.Lock()
				asked = append(asked, local, remote)
				mu.Unlock()
				return tc.uid, tc.err
			}
			base := serveLoopback(t, s)
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			defer c.CloseIdleConnections()
			get := func(path string) (int, string) {
				resp, err := c.Get(base + path)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			code, page := get("/instances/plug-00/inst-0000/stop")
			m := csrfRE.FindStringSubmatch(page)
			if code != http.StatusOK || m == nil {
				t.Fatalf("confirmation page: %d", code)
			}
			before := f.state()
			req, _ := http.NewRequest(http.MethodPost, base+"/instances/plug-00/inst-0000/stop", strings.NewReader(url.Values{"csrf": {m[1]}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", base)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			seen := slices.Clone(asked) // the later GETs look up too
			mu.Unlock()
			if len(seen) != 2 || seen[0].String() != strings.TrimPrefix(base, "http://") || !seen[1].Addr().IsLoopback() {
				t.Errorf("looked up %v, want the server's address and the client's", seen)
			}
			if tc.ok {
				if resp.StatusCode != http.StatusSeeOther || !strings.Contains(f.state(), "plug-00/inst-0000 stopped") {
					t.Fatalf("stop: %d, state %s", resp.StatusCode, f.state())
				}
				if code, _ := get("/instances/plug-00/inst-0000"); code != http.StatusOK {
					t.Errorf("an instance's page (its output) for %s: %d, want 200", tc.name, code)
				}
				return
			}
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), tc.reason) {
				t.Errorf("stop: %d, want 403 saying %q:\n%s", resp.StatusCode, tc.reason, body)
			}
			if after := f.state(); after != before {
				t.Errorf("a refused stop changed the backend:\n%s", after)
			}
			if code, _ := get("/instances"); code != http.StatusOK {
				t.Errorf("instances page for a refused peer: %d, want 200", code)
			}
			// What shows a plugin's output is read as plugs logs is: not
			// by another user.
			for _, path := range []string{"/instances/plug-00/inst-0000", "/instances/plug-00/inst-0000/log", "/tasks/plug-00/inst-0000"} {
				if code, _ := get(path); code != http.StatusForbidden {
					t.Errorf("%s for a refused peer: %d, want 403", path, code)
				}
			}
		})
	}
}

// TestPeerUIDOfRealConnection: the socket table names the test's own uid
// for a loopback connection it made, over IPv4 and IPv6.
func TestPeerUIDOfRealConnection(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		l, err := net.Listen(network, addr)
		if err != nil {
			t.Logf("%s: %v", network, err)
			continue
		}
		c, err := net.Dial(network, l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		sc, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		uid, err := procPeerLookup("/proc")(sc.LocalAddr().(*net.TCPAddr).AddrPort(), sc.RemoteAddr().(*net.TCPAddr).AddrPort())
		if err != nil || uid != uint32(os.Getuid()) {
			t.Errorf("%s: peer uid %d, %v; want %d", network, uid, err, os.Getuid())
		}
		c.Close()
		sc.Close()
		l.Close()
	}
}

// TestPeerUIDFromTable: which line of /proc/net/tcp{,6} names the client,
// and the lines that must never be taken for it.
func TestPeerUIDFromTable(t *testing.T) {
	const head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	// The server listens on 127.0.0.1:9470 (24FE) and sees a client at
	// 127.0.0.1:50000 (C350); its own end is the line with those swapped.
	const (
		listen = "   0: 0100007F:24FE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0\n"
		server = "   1: 0100007F:24FE 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 20 4 30 10 -1\n"
		client = "   2: 0100007F:C350 0100007F:24FE 01 00000000:00000000 00:00000000 00000000  1000        0 333 1 0 20 4 30 10 -1\n"
		// A closed client socket the kernel keeps (time-wait, an orphaned
		// FIN-WAIT-2): uid 0, inode 0.
		closed = "   2: 0100007F:C350 0100007F:24FE 05 00000000:00000000 03:00000D2B 00000000     0        0 0 3 0000000000000000\n"
		// The client as a dual-stack socket (::ffff:127.0.0.1).
		mapped = "   0: 0000000000000000FFFF00000100007F:C350 0000000000000000FFFF00000100007F:24FE 01 00000000:00000000 00:00000000 00000000  1001        0 444 1 0 20 4 30 10 -1\n"
	)
	local := netip.MustParseAddrPort("127.0.0.1:9470")
	remote := netip.MustParseAddrPort("127.0.0.1:50000")
	for _, tc := range []struct {
		name, tcp, tcp6 string
		want            uint32
		err             string
	}{
		{name: "client", tcp: listen + server + client, tcp6: "", want: 1000},
		{name: "dual-stack client", tcp: listen + server, tcp6: mapped, want: 1001},
		{name: "closed client is not root", tcp: listen + server + closed, err: "closed"},
		{name: "no client", tcp: listen + server, err: "no local socket 127.0.0.1:50000"},
		{name: "two clients", tcp: listen + server + client, tcp6: mapped, err: "2 sockets"},
		{name: "no table", err: "no socket table"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			os.Mkdir(filepath.Join(root, "net"), 0o755)
			if tc.tcp != "" {
				os.WriteFile(filepath.Join(root, "net", "tcp"), []byte(head+tc.tcp), 0o644)
			}
			if tc.tcp6 != "" {
				os.WriteFile(filepath.Join(root, "net", "tcp6"), []byte(head+tc.tcp6), 0o644)
			}
			fs, err := procfs.NewFS(root)
			if err != nil {
				t.Fatal(err)
			}
			uid, err := peerUIDIn(fs, local, remote)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("peer uid %d, %v; want an error saying %q", uid, err, tc.err)
				}
				return
			}
			if err != nil || uid != tc.want {
				t.Errorf("peer uid %d, %v; want %d", uid, err, tc.want)
			}
		})
	}
}
