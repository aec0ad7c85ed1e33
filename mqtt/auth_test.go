package mqtt

import (
	"golang.org/x/sys/unix"

	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/internal/syncbuf"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/go-cmp/cmp"

	"github.com/plugs-dev/plugs/internal/mqtttest"
)

func TestLoadAuthPersistsPrivately(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "broker")
	a, err := LoadAuth(dir)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, "key"): 0o600, ReaderPasswordPath(dir): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v (even under umask 0)", path, fi.Mode(), want)
		}
	}
	b, err := LoadAuth(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]func() (string, string){{a.Daemon, b.Daemon}, {a.Reader, b.Reader}} {
		u1, p1 := pair[0]()
		u2, p2 := pair[1]()
		if u1 != u2 || p1 != p2 {
			t.Errorf("credentials changed over a restart: %s/%s vs %s/%s", u1, p1, u2, p2)
		}
	}
	_, p1 := a.Instance("heart-rate", "patient-17")
	_, p2 := b.Instance("heart-rate", "patient-17")
	_, p3 := b.Instance("heart-rate", "patient-22")
	if p1 != p2 || p2 == p3 {
		t.Errorf("instance passwords: restart %q→%q, other instance %q; want stable and distinct", p1, p2, p3)
	}
	raw, _ := os.ReadFile(ReaderPasswordPath(dir))
	if _, pw := a.Reader(); strings.TrimSpace(string(raw)) != pw {
		t.Errorf("reader.password = %q, want the reader's password", raw)
	}
}

func TestAuthCheck(t *testing.T) {
	a := testAuth(t)
	du, dp := a.Daemon()
	ru, rp := a.Reader()
	iu, ip := a.Instance("p", "i")
	for _, c := range []struct {
		user, pass string
		want       Account
	}{
		{du, dp, Account{Role: RoleDaemon}},
		{ru, rp, Account{Role: RoleReader}},
		{iu, ip, Account{Role: RoleInstance, Plug: "p", Instance: "i"}},
		{iu, dp, Account{}},
		{"", "", Account{}},
		{"p/i/x", ip, Account{}},
		{du, "", Account{}},
	} {
		if got := a.Check(c.user, c.pass); got != c.want {
			t.Errorf("Check(%q, %q) = %+v, want %+v", c.user, c.pass, got, c.want)
		}
	}
}

func TestACLRules(t *testing.T) {
	daemon := Account{Role: RoleDaemon}
	reader := Account{Role: RoleReader}
	inst := Account{Role: RoleInstance, Plug: "heart-rate", Instance: "patient-17"}
	for _, c := range []struct {
		acct  Account
		topic string
		write bool
		want  bool
	}{
		{daemon, "plugs/h/status", true, true},
		{daemon, "plugs/h/heart-rate/patient-17/state", true, true},
		{daemon, "plugs/#", false, true},
		{reader, "plugs/#", false, true},
		{reader, "plugs/h/status", true, false},
		{reader, "plugs/h/heart-rate/patient-17/data", true, false},
		{inst, "plugs/h/heart-rate/patient-17/data", true, true},
		{inst, "plugs/h/heart-rate/patient-17/state", true, false},
		{inst, "plugs/h/heart-rate/patient-22/data", true, false},
		{inst, "plugs/h/status", true, false},
		{inst, "plugs/h/reconcile", true, false},
		{inst, "plugs/h/heart-rate/patient-17/+", true, false},
		{inst, "plugs/h/heart-rate/patient-17/data", false, true},
		{inst, "plugs/h/status", false, true},
		{inst, "plugs/h/heart-rate/patient-22/data", false, false},
		{inst, "plugs/#", false, true}, // a subscribe: what it delivers is checked per topic
		{inst, "elsewhere/#", false, false},
		{Account{}, "plugs/h/status", false, false},
	} {
		if got := allowed(c.acct, c.topic, c.write); got != c.want {
			t.Errorf("allowed(%+v, %q, write=%v) = %v, want %v", c.acct, c.topic, c.write, got, c.want)
		}
	}
}

// tryConnect connects a client to the broker; it returns the client or the
// broker's refusal.
func tryConnect(t *testing.T, url, clientID string, will string) (paho.Client, error) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(clientID).
		SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).SetCleanSession(true)
	if will != "" {
		opts.SetWill(will, "pwned", 1, true)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(30 * time.Second) {
		t.Fatalf("connect %s: no answer", clientID)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

// TestEmbeddedBrokerAccessControl plays a local user against the embedded
// broker: anonymously, with a wrong password, and with one instance's
// credentials trying to read other instances and to overwrite the
// daemon's retained topics.
func TestEmbeddedBrokerAccessControl(t *testing.T) {
	a := testAuth(t)
	e, err := StartEmbedded("127.0.0.1:0", a, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	du, dp := a.Daemon()
	ru, rp := a.Reader()
	iu, ip := a.Instance("heart-rate", "patient-17")
	host := "edge-01"

	p := NewPublisher(Config{URL: e.URL(), Username: du, Password: dp, Host: host, RetryInterval: 50 * time.Millisecond, RunID: testRunID})
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer closePublisher(t, p)
	mine, other := StateTopic(host, "heart-rate", "patient-17"), StateTopic(host, "heart-rate", "patient-22")
	p.PublishState("heart-rate", "patient-17", StateMessage{State: "running", PID: 1})
	p.PublishState("heart-rate", "patient-22", StateMessage{State: "running", PID: 2})
	readerURL := withUser(e.URL(), ru, rp)
	watch := mqtttest.Subscribe(t, readerURL, "plugs/#")
	mqtttest.Await(t, watch, "state of patient-22", func(m mqtttest.Message) bool { return m.Topic == other })

	if _, err := tryConnect(t, e.URL(), "anon", ""); err == nil {
		t.Error("an anonymous client was admitted")
	}
	if _, err := tryConnect(t, withUser(e.URL(), iu, dp), "wrong-pw", ""); err == nil {
		t.Error("a client with a wrong password was admitted")
	}
	if _, err := tryConnect(t, withUser(e.URL(), iu, ip), "plugs-"+host, ""); err == nil {
		t.Error("an instance took the daemon's client id")
	}
	if _, err := tryConnect(t, withUser(e.URL(), iu, ip), "will", StatusTopic(host)); err == nil {
		t.Error("an instance set a last will on the host's status topic")
	}

	instURL := withUser(e.URL(), iu, ip)
	seen := mqtttest.Subscribe(t, instURL, "plugs/#", "plugs/"+host+"/heart-rate/patient-17/data")
	for _, topic := range []string{StatusTopic(host), other, mine, ReconcileTopic(host), DataTopic(host, "heart-rate", "patient-22")} {
		c, err := tryConnect(t, instURL, "attacker-"+strings.ReplaceAll(topic, "/", "-"), "")
		if err != nil {
			t.Fatal(err)
		}
		tok := c.Publish(topic, 1, true, "pwned")
		tok.WaitTimeout(10 * time.Second)
		// mochi refuses by disconnecting an MQTT 3 client; either way
		// nothing may reach the topic (checked below).
	}
	data := DataTopic(host, "heart-rate", "patient-17")
	mqtttest.Publish(t, instURL, data, []byte(`{"ok":1}`), false)
	mqtttest.Await(t, watch, "the instance's own data point", func(m mqtttest.Message) bool { return m.Topic == data })

	// The instance's own subscription to plugs/# saw its data point and no
	// other instance's state.
	mqtttest.Await(t, seen, "own data point", func(m mqtttest.Message) bool {
		if m.Topic == other {
			t.Errorf("an instance read another instance's state %s", m.Topic)
		}
		return m.Topic == data
	})
	got := retained(t, withUser(e.URL(), du, dp), "plugs/"+host+"/#", "plugs/sentinel/acl")
	for topic, payload := range got {
		if strings.Contains(payload, "pwned") {
			t.Errorf("an instance overwrote %s: %q", topic, payload)
		}
	}
	if got[StatusTopic(host)] != StatusOnline {
		t.Errorf("status = %q, want online", got[StatusTopic(host)])
	}
}

// TestRunTopicAndStoppedStates: the run topic names the run before
// "online"; a clean Close marks every instance stopped (pid 0) before
// "offline", and every state names the run.
func TestRunTopicAndStoppedStates(t *testing.T) {
	brokers(t, func(t *testing.T, url string) {
		sub := mqtttest.Subscribe(t, url, "plugs/edge-05/#")
		p := NewPublisher(fastConfig(url, "edge-05"))
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		sawRun := false
		mqtttest.Await(t, sub, "online", func(m mqtttest.Message) bool {
			if m.Topic == RunTopic("edge-05") {
				var r RunMessage
				if err := json.Unmarshal(m.Payload, &r); err != nil || r.Run != testRunID || r.PID != os.Getpid() {
					t.Errorf("run message %s: %+v, %v", m.Payload, r, err)
				}
				sawRun = true
			}
			return isPayload(StatusTopic("edge-05"), StatusOnline)(m)
		})
		if !sawRun {
			t.Error("online came before the run topic")
		}
		for i := range 3 {
			p.PublishState("p", fmt.Sprint(i), StateMessage{State: "running", PID: 100 + i, Version: "1"})
		}
		mqtttest.Await(t, sub, "last state", func(m mqtttest.Message) bool { return m.Topic == StateTopic("edge-05", "p", "2") })
		closePublisher(t, p)
		stopped := map[string]bool{}
		mqtttest.Await(t, sub, "offline", func(m mqtttest.Message) bool {
			var s StateMessage
			if strings.HasSuffix(m.Topic, "/state") && json.Unmarshal(m.Payload, &s) == nil && s.State == StateStopped && s.PID == 0 && s.Run == testRunID {
				stopped[m.Topic] = true
			}
			return isPayload(StatusTopic("edge-05"), StatusOffline)(m)
		})
		if len(stopped) != 3 {
			t.Errorf("stopped states before offline: %v, want all 3", stopped)
		}
		got := retained(t, url, "plugs/edge-05/+/+/state", "plugs/sentinel/edge-05")
		for topic, payload := range got {
			var s StateMessage
			if err := json.Unmarshal([]byte(payload), &s); err != nil || s.State != StateStopped || s.Version != "1" {
				t.Errorf("retained %s = %s after a clean stop, want stopped", topic, payload)
			}
		}
	})
}

// TestConnectFailureVisible: wrong credentials are logged once (not at
// every retry) and shown by LastError, which clears once connected.
func TestConnectFailureVisible(t *testing.T) {
	a := testAuth(t)
	e, err := StartEmbedded("127.0.0.1:0", a, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var logs syncbuf.Buffer
	secret := "wrong-" + fmt.Sprint(time.Now().UnixNano())
	p := NewPublisher(Config{URL: e.URL(), Username: DaemonUsername, Password: secret, Host: "h", RetryInterval: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer closePublisher(t, p)
	// Wait for three failed attempts: each sets a new time.
	var times []time.Time
	for range 3000 {
		msg, at := p.LastError()
		if msg != "" && (len(times) == 0 || !at.Equal(times[len(times)-1])) {
			times = append(times, at)
			if len(times) == 3 {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(times) < 3 {
		t.Fatalf("LastError never showed three failed attempts: %v", times)
	}
	msg, _ := p.LastError()
	if !strings.Contains(strings.ToLower(msg), "not authorized") && !strings.Contains(strings.ToLower(msg), "bad user name or password") {
		t.Errorf("LastError() = %q, want the broker's refusal", msg)
	}
	out := logs.String()
	if n := strings.Count(out, "mqtt broker connect failed"); n != 1 {
		t.Errorf("the same failure was logged %d times over %d attempts, want once:\n%s", n, len(times), out)
	}
	if strings.Contains(out, secret) || strings.Contains(msg, secret) {
		t.Error("the password reached the log or LastError")
	}
	if diff := cmp.Diff(false, p.Connected()); diff != "" {
		t.Error("connected with a wrong password")
	}
}

// TestLoadAuthOnAFullDisk: a daemon restarted on a full disk loads the
// credentials it made before: the password files that hold what they
// should are not written again (a write would fail, and nothing would run).
func TestLoadAuthOnAFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts a small tmpfs: needs root")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	dir := filepath.Join(mnt, "broker")
	a, err := LoadAuth(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(mnt, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for range 64 { // 256 KiB at most: past the 64 KiB the mount holds
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(mnt, "probe"), chunk, 0o600); err == nil {
		t.Fatal("the tmpfs is not full")
	}
	b, err := LoadAuth(dir)
	if err != nil {
		t.Fatalf("LoadAuth on a full disk, its files already there: %v", err)
	}
	if _, p1 := a.Reader(); p1 != func() string { _, p := b.Reader(); return p }() {
		t.Error("the reader's password changed")
	}
}
