package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/internal/syncbuf"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/plugs-dev/plugs/internal/mqtttest"
)

// waitBound bounds every wait of these tests. It turns a hang into a
// failure; it is not an assertion about speed.
const waitBound = 60 * time.Second

// forgetTree removes a plug's fetched trees from a state directory (they
// are read-only once complete), so that the next fetch brings it in again.
func forgetTree(t *testing.T, stateDir, plug string) {
	t.Helper()
	root := filepath.Join(stateDir, "plugins", plug)
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o755)
		}
		return nil
	})
	if err := os.RemoveAll(root); err != nil {
		t.Fatalf("forget %s: %v", plug, err)
	}
}

// randomHex returns 16 random hex digits, to plant unique secrets and names.
func randomHex(t *testing.T) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// eventually polls cond until it returns nil, failing the test with cond's
// last error if it does not within waitBound.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, waitBound, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeFile writes a test fixture.
func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testPlugin returns the absolute path of a plugin in testdata/plugins.
func testPlugin(t *testing.T, name string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("testdata", "plugins", name))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// examplePlugin returns the absolute path of a plugin in examples/plugins.
func examplePlugin(t *testing.T, name string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("..", "examples", "plugins", name))
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// cliResult is what one plugs command did.
type cliResult struct {
	stdout, stderr string
	code           int
}

// plugs runs the plugs binary in dir with env added to the test's
// environment.
func plugs(t *testing.T, dir string, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, plugsBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errOut.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		r.code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("plugs %v: %v", args, err)
	}
	return r
}

// mustPlugs is plugs that requires exit status 0.
func mustPlugs(t *testing.T, dir string, env []string, args ...string) cliResult {
	t.Helper()
	r := plugs(t, dir, env, args...)
	if r.code != 0 {
		t.Fatalf("plugs %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

// plugsDaemon is a `plugs run` process.
type plugsDaemon struct {
	dir, file, stateDir string
	env                 []string
	cmd                 *exec.Cmd
	log                 *syncbuf.Buffer
	exited              chan struct{} // closed once cmd has been waited for
	err                 error         // Wait's result, once exited is closed
}

// startDaemon runs `plugs run -f file` in dir, with its state in
// dir/.plugs, metrics and the embedded broker (if used) on free loopback
// ports, and debug logs (the more it logs, the more a secret could leak).
// It is stopped when the test ends: SIGTERM, then SIGKILL.
func startDaemon(t *testing.T, dir, file string, env []string) *plugsDaemon {
	t.Helper()
	d := &plugsDaemon{
		dir: dir, file: file, stateDir: filepath.Join(dir, ".plugs"), env: env,
		log: &syncbuf.Buffer{}, exited: make(chan struct{}),
	}
	// The sandbox (its own e2e test: sandbox_test.go) would run these
	// plugins as users plugs creates, who cannot reach a test's 0700 folders.
	d.cmd = exec.Command(plugsBin, "run", "-f", file, "--state-dir", d.stateDir,
		"--metrics-addr", "127.0.0.1:0", "--broker-addr", "127.0.0.1:0", "--ui-addr", "127.0.0.1:0", "--log-level", "debug",
		"--sandbox="+strconv.FormatBool(sandboxOn(env)))
	d.cmd.Dir = dir
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start plugs run: %v", err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		if err := d.stop(30 * time.Second); err != nil {
			t.Errorf("stop daemon: %v\nits log:\n%s", err, d.log.String())
		}
	})
	return d
}

// stop sends SIGTERM and waits up to grace for the daemon to exit, then
// kills it. It returns how the daemon ended, or why it had to be killed.
func (d *plugsDaemon) stop(grace time.Duration) error {
	select {
	case <-d.exited:
		return nil // already ended; the test looked at how
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		return d.err
	case <-time.After(grace):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("no exit within %s of SIGTERM; killed", grace)
	}
}

// status asks the daemon for its status over the local API.
func (d *plugsDaemon) status() (*api.Status, error) {
	select {
	case <-d.exited:
		return nil, fmt.Errorf("the daemon exited: %v", d.err)
	default:
	}
	c, err := api.Dial(d.stateDir)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Status(ctx)
}

// waitStatus polls the status until cond accepts it, and returns it.
func (d *plugsDaemon) waitStatus(t *testing.T, what string, cond func(*api.Status) error) *api.Status {
	t.Helper()
	var st *api.Status
	deadline := time.Now().Add(waitBound)
	for {
		var err error
		st, err = d.status()
		if err == nil {
			err = cond(st)
		}
		if err == nil {
			return st
		}
		select {
		case <-d.exited:
			t.Fatalf("%s: the daemon exited (%v); its log:\n%s", what, d.err, d.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v\nthe daemon's log:\n%s", what, waitBound, err, d.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// running accepts a status whose last reconcile succeeded and in which
// each of ids ("plug/instance") runs.
func running(ids ...string) func(*api.Status) error {
	return func(st *api.Status) error {
		if r := st.Daemon.LastReconcile; r == nil || r.Error != "" {
			return fmt.Errorf("last reconcile: %+v", r)
		}
		for _, id := range ids {
			i := instanceOf(st, id)
			if i == nil || i.State != "running" || i.PID == 0 {
				return fmt.Errorf("%s: %+v", id, i)
			}
		}
		return nil
	}
}

// instanceOf finds the instance id ("plug/instance") in a status.
func instanceOf(st *api.Status, id string) *api.InstanceStatus {
	for i := range st.Instances {
		if st.Instances[i].Plug+"/"+st.Instances[i].Instance == id {
			return &st.Instances[i]
		}
	}
	return nil
}

// pidAlive reports whether pid exists (and is not a zombie of ours).
func pidAlive(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(raw)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// stateMessage is the JSON of a retained per-instance state message.
type stateMessage struct {
	State    string    `json:"state"`
	PID      int       `json:"pid"`
	Version  string    `json:"version"`
	Revision string    `json:"revision"`
	Restarts int       `json:"restarts"`
	Since    time.Time `json:"since"`
}

// mqttWatch reads a subscriber's messages and checks each one it reads
// for planted secrets.
type mqttWatch struct {
	t       *testing.T
	ch      <-chan mqtttest.Message
	secrets []string
	seen    int
}

// watch subscribes to filter on url (anonymously).
func watch(t *testing.T, url, filter string, secrets []string) *mqttWatch {
	t.Helper()
	return &mqttWatch{t: t, ch: mqtttest.Subscribe(t, url, filter), secrets: secrets}
}

func (w *mqttWatch) check(m mqtttest.Message) {
	w.seen++
	for _, s := range w.secrets {
		if bytes.Contains(m.Payload, []byte(s)) || strings.Contains(m.Topic, s) {
			w.t.Errorf("a secret was published on %s", m.Topic)
		}
	}
}

// await returns the first message that match accepts.
func (w *mqttWatch) await(what string, match func(mqtttest.Message) bool) mqtttest.Message {
	w.t.Helper()
	return mqtttest.Await(w.t, w.ch, what, func(m mqtttest.Message) bool {
		w.check(m)
		return match(m)
	})
}

// awaitState returns the first state message of id ("plug/instance") on
// host that match accepts.
func (w *mqttWatch) awaitState(host, id, what string, match func(mqtttest.Message, stateMessage) bool) stateMessage {
	w.t.Helper()
	topic := "plugs/" + host + "/" + id + "/state"
	var st stateMessage
	w.await(topic+" "+what, func(m mqtttest.Message) bool {
		if m.Topic != topic {
			return false
		}
		var s stateMessage
		if err := json.Unmarshal(m.Payload, &s); err != nil {
			w.t.Errorf("state on %s is not JSON: %v: %q", topic, err, m.Payload)
			return false
		}
		st = s
		return match(m, s)
	})
	return st
}

// drain checks the messages received so far without waiting for more.
func (w *mqttWatch) drain() {
	for {
		select {
		case m := <-w.ch:
			w.check(m)
		default:
			return
		}
	}
}

// retainedState checks that a fresh subscriber to plugs/<host>/# gets
// the retained status online and a retained state of every instance of ids,
// and returns the subscriber and those states. A state is published after
// the change it reports, so the retained one may lag behind plugs status:
// awaitRunning waits for it to catch up.
func retainedState(t *testing.T, url, host string, secrets []string, ids ...string) (*mqttWatch, map[string]stateMessage) {
	t.Helper()
	w := watch(t, url, "plugs/"+host+"/#", secrets)
	want := map[string]string{} // topic → id
	for _, id := range ids {
		want["plugs/"+host+"/"+id+"/state"] = id
	}
	got := map[string]stateMessage{}
	online := false
	w.await(fmt.Sprintf("retained online and states of %v", ids), func(m mqtttest.Message) bool {
		if !m.Retained {
			return false
		}
		if m.Topic == "plugs/"+host+"/status" {
			online = online || string(m.Payload) == "online"
		}
		if id, ok := want[m.Topic]; ok {
			var s stateMessage
			if err := json.Unmarshal(m.Payload, &s); err != nil {
				t.Errorf("state on %s is not JSON: %v: %q", m.Topic, err, m.Payload)
			} else {
				got[id] = s
			}
		}
		return online && len(got) == len(ids)
	})
	return w, got
}

// awaitRunning returns the state of id ("plug/instance") on host once it
// is running with pid: got[id] if it already is, else a later message.
func (w *mqttWatch) awaitRunning(host, id string, pid int, got map[string]stateMessage) stateMessage {
	w.t.Helper()
	if s, ok := got[id]; ok && s.State == "running" && s.PID == pid {
		return s
	}
	return w.awaitState(host, id, fmt.Sprintf("running with pid %d", pid), func(_ mqtttest.Message, s stateMessage) bool {
		return s.State == "running" && s.PID == pid
	})
}

// scanForSecrets fails the test if text holds a secret.
func scanForSecrets(t *testing.T, where, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("a secret appears in %s:\n%s", where, text)
		}
	}
}

// scanStateDir checks that no file of the state directory (instance.json
// and output.log included) but an instance's config.json holds a secret,
// that every config.json has mode 0600, and returns the config.json files
// by path relative to stateDir.
func scanStateDir(t *testing.T, stateDir string, secrets []string) map[string][]byte {
	t.Helper()
	configs := map[string][]byte{}
	err := filepath.WalkDir(stateDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // an instance's files can vanish while the walk runs
			}
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		raw, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		rel, _ := filepath.Rel(stateDir, path)
		if filepath.Base(path) == "config.json" && strings.HasPrefix(rel, "instances"+string(filepath.Separator)) {
			info, err := e.Info()
			if err != nil {
				return err
			}
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", rel, info.Mode().Perm())
			}
			configs[rel] = raw
			return nil
		}
		for _, s := range secrets {
			if bytes.Contains(raw, []byte(s)) {
				t.Errorf("a secret appears in %s", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", stateDir, err)
	}
	// The scan covered each instance's state file, or it proves nothing: a
	// service's instance.json beside its config, a task's run history.
	for rel := range configs {
		state := filepath.Join(stateDir, filepath.Dir(rel), "instance.json")
		plug := filepath.Base(filepath.Dir(filepath.Dir(rel)))
		runs := filepath.Join(stateDir, "tasks", plug, "runs.json")
		_, err := os.Stat(state)
		if _, rerr := os.Stat(runs); err != nil && rerr != nil {
			t.Errorf("%s has no instance.json beside it (%v) nor a task history (%v)", rel, err, rerr)
		}
	}
	return configs
}

// httpGet returns the body of a GET of url, which must answer 200.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return string(body)
}

// mosquitto is a Mosquitto broker on a free loopback port that checks the
// credentials of the clients that present some (against a password file)
// and lets anonymous clients (the test's subscribers) in. mqtttest's
// broker has no password file, and the daemon's must be checked.
type mosquitto struct {
	t    *testing.T
	bin  string
	url  string
	addr string
	conf string
	log  *syncbuf.Buffer

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// startMosquitto starts the broker with one user; it stops when the test
// ends.
func startMosquitto(t *testing.T, username, password string) *mosquitto {
	t.Helper()
	bin := mqtttest.MosquittoPath
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("mosquitto"); err != nil {
			t.Skip("mosquitto not installed (run scripts/test-deps.sh)")
		}
	}
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed (run scripts/test-deps.sh)")
	}
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "passwd")
	if out, err := exec.Command(passwd, "-b", "-c", pwFile, username, password).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	if err := os.Chmod(pwFile, 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	port := mqtttest.FreePort(t)
	m := &mosquitto{
		t: t, bin: bin, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		conf: filepath.Join(dir, "mosquitto.conf"), log: &syncbuf.Buffer{},
	}
	m.url = "tcp://" + m.addr
	// user: run as the test's user (as root it would switch to "mosquitto",
	// which cannot read the test's private directory).
	conf := fmt.Sprintf("user %s\nlistener %d 127.0.0.1\nallow_anonymous true\npassword_file %s\npersistence false\nlog_dest stderr\nlog_type all\n",
		u.Username, port, pwFile)
	writeFile(t, m.conf, conf)
	m.start()
	t.Cleanup(m.stop)
	return m
}

func (m *mosquitto) start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("start mosquitto: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	m.cmd, m.exited = cmd, exited
	deadline := time.Now().Add(waitBound)
	for {
		c, err := net.DialTimeout("tcp", m.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			m.t.Fatalf("mosquitto exited; its log:\n%s", m.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto not listening on %s; its log:\n%s", m.addr, m.log.String())
		}
	}
}

// stop stops the broker (its retained messages are lost: no persistence).
func (m *mosquitto) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(waitBound):
		_ = m.cmd.Process.Kill()
		<-m.exited
	}
	m.cmd = nil
}

// restart starts a stopped broker again on the same port.
func (m *mosquitto) restart() {
	m.t.Helper()
	m.stop()
	m.start()
}

// retainedAll returns the retained messages of filter on the broker at url,
// by topic, from a subscriber that disconnects before it returns. A
// sentinel published after the subscription marks the end of the retained
// messages (a broker sends them before it handles the next packet).
func retainedAll(t *testing.T, url, filter string) map[string][]byte {
	t.Helper()
	sentinel := "e2e-sentinel/" + randomHex(t)
	got := map[string][]byte{}
	done := make(chan struct{})
	var mu sync.Mutex
	opts := paho.NewClientOptions().AddBroker(url).SetClientID("e2e-retained-" + randomHex(t)).
		SetCleanSession(true).SetOrderMatters(true).SetAutoReconnect(false).SetConnectTimeout(waitBound)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(waitBound) || tok.Error() != nil {
		t.Fatalf("connect to %s: %v", url, tok.Error())
	}
	defer c.Disconnect(50)
	handler := func(_ paho.Client, m paho.Message) {
		mu.Lock()
		defer mu.Unlock()
		if m.Topic() == sentinel {
			select {
			case <-done:
			default:
				close(done)
			}
			return
		}
		if m.Retained() && len(m.Payload()) > 0 {
			got[m.Topic()] = m.Payload()
		}
	}
	for _, f := range []string{filter, sentinel} {
		if tok := c.Subscribe(f, 1, handler); !tok.WaitTimeout(waitBound) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", f, tok.Error())
		}
	}
	if tok := c.Publish(sentinel, 1, false, "end"); !tok.WaitTimeout(waitBound) || tok.Error() != nil {
		t.Fatalf("publish sentinel: %v", tok.Error())
	}
	select {
	case <-done:
	case <-time.After(waitBound):
		t.Fatalf("no sentinel from %s within %s", url, waitBound)
	}
	mu.Lock()
	defer mu.Unlock()
	return maps.Clone(got)
}
