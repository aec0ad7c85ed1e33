// Package mqtttest starts real MQTT brokers and subscribers for tests: a
// Mosquitto process on a free 127.0.0.1 port, and a paho subscriber that
// delivers messages on a channel. Everything it starts is stopped by
// t.Cleanup.
package mqtttest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// MosquittoPath is where Debian installs the broker (scripts/test-deps.sh).
const MosquittoPath = "/usr/sbin/mosquitto"

// readyWait bounds how long a broker may take to accept connections; it is
// a guard against hanging, not an assertion about speed.
const readyWait = 30 * time.Second

// Mosquitto starts a Mosquitto broker on a free 127.0.0.1 port, anonymous
// and without persistence, and returns its URL (tcp://127.0.0.1:PORT). stop
// stops it (its retained messages are lost); restart stops it if running
// and starts it again on the same port. It is stopped when the test ends.
func Mosquitto(t testing.TB) (url string, stop func(), restart func()) {
	t.Helper()
	return mosquitto(t, "allow_anonymous true\n")
}

// MosquittoWithACL starts a Mosquitto broker like Mosquitto, but one that
// refuses anonymous clients: users maps each account to its password
// (hashed with mosquitto_passwd), and acl is the text of its acl_file
// ("user NAME" lines, each followed by "topic read|write|readwrite FILTER"
// lines). It returns the broker's URL, without credentials.
func MosquittoWithACL(t testing.TB, users map[string]string, acl string) string {
	t.Helper()
	dir := t.TempDir()
	pwFile, aclFile := filepath.Join(dir, "passwords"), filepath.Join(dir, "acl")
	if err := os.WriteFile(pwFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for u, pw := range users {
		if out, err := exec.Command("mosquitto_passwd", "-b", pwFile, u, pw).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd (run scripts/test-deps.sh): %v\n%s", err, out)
		}
	}
	if err := os.WriteFile(aclFile, []byte(acl), 0o600); err != nil {
		t.Fatal(err)
	}
	// Run as root, the broker would switch to the mosquitto user before
	// reading the files this test owns.
	u, _, _ := mosquitto(t, fmt.Sprintf("allow_anonymous false\npassword_file %s\nacl_file %s\nuser root\n", pwFile, aclFile))
	return u
}

func mosquitto(t testing.TB, extra string) (url string, stop func(), restart func()) {
	t.Helper()
	bin := MosquittoPath
	if _, err := os.Stat(bin); err != nil {
		if bin, err = exec.LookPath("mosquitto"); err != nil {
			t.Fatalf("mosquitto not installed (run scripts/test-deps.sh): %v", err)
		}
	}
	port := FreePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	body := fmt.Sprintf("listener %d 127.0.0.1\n%spersistence false\nlog_dest stderr\n", port, extra)
	logPath := filepath.Join(dir, "mosquitto.log")
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))

	var mu sync.Mutex
	var cmd *exec.Cmd
	var waitErr chan error
	stop = func() {
		mu.Lock()
		defer mu.Unlock()
		if cmd == nil {
			return
		}
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-waitErr:
		case <-time.After(readyWait):
			_ = cmd.Process.Kill()
			<-waitErr
		}
		cmd = nil
	}
	start := func() {
		mu.Lock()
		defer mu.Unlock()
		// Mosquitto drops root privileges, so the test opens its log.
		logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer logFile.Close() // the child keeps its own descriptor
		c := exec.Command(bin, "-c", conf)
		c.Stdout, c.Stderr = logFile, logFile
		if err := c.Start(); err != nil {
			t.Fatalf("start mosquitto: %v", err)
		}
		cmd, waitErr = c, make(chan error, 1)
		go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(c, waitErr)
		if err := waitListening(addr, waitErr); err != nil {
			_ = c.Process.Kill()
			log, _ := os.ReadFile(logPath)
			t.Fatalf("mosquitto on %s: %v; its log:\n%s", addr, err, log)
		}
	}
	restart = func() {
		stop()
		start()
	}
	start()
	t.Cleanup(stop)
	return "tcp://" + addr, stop, restart
}

// waitListening waits until addr accepts TCP connections, or the process
// exits.
func waitListening(addr string, exited <-chan error) error {
	deadline := time.Now().Add(readyWait)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("not listening after " + readyWait.String())
		}
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Message is one message a subscriber received.
type Message struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// Subscribe connects a fresh client (clean session) to url, subscribes to
// topic and then to each of more (wildcards allowed) at QoS 1, one after the
// other, and returns the messages it receives, retained ones included. It
// fails the test if it cannot subscribe, and disconnects when the test ends.
//
// A broker handles one client's packets in order, so the retained messages
// of topic are all sent before the subscription to more[0] exists: a
// message published to more[0] afterwards arrives after them.
func Subscribe(t testing.TB, url, topic string, more ...string) <-chan Message {
	t.Helper()
	ch := make(chan Message, 1024)
	done := make(chan struct{})
	opts := paho.NewClientOptions().
		AddBroker(url).
		SetClientID(fmt.Sprintf("mqtttest-%d-%d", os.Getpid(), time.Now().UnixNano())).
		SetCleanSession(true).
		SetOrderMatters(true).
		SetAutoReconnect(false).
		SetConnectTimeout(readyWait)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(readyWait) || tok.Error() != nil {
		t.Fatalf("subscriber connect to %s: %v", url, tok.Error())
	}
	handler := func(_ paho.Client, m paho.Message) {
		select {
		case ch <- Message{Topic: m.Topic(), Payload: m.Payload(), Retained: m.Retained()}:
		case <-done:
		}
	}
	for _, f := range append([]string{topic}, more...) {
		if err := subscribe(c, f, handler); err != nil {
			c.Disconnect(0)
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		close(done)
		c.Disconnect(100)
	})
	return ch
}

// subscribe subscribes c to filter at QoS 1 and checks the broker granted
// it. mochi-mqtt refuses a SUBSCRIBE whose packet id equals the id of a
// message it is still sending to the client (it shares one id space for
// both directions), so a refusal is retried: paho picks the next free id.
func subscribe(c paho.Client, filter string, handler paho.MessageHandler) error {
	var code byte
	for range 10 {
		tok := c.Subscribe(filter, 1, handler)
		if !tok.WaitTimeout(readyWait) {
			return fmt.Errorf("subscribe %s: no answer within %s", filter, readyWait)
		}
		if err := tok.Error(); err != nil {
			return fmt.Errorf("subscribe %s: %w", filter, err)
		}
		code = tok.(*paho.SubscribeToken).Result()[filter]
		if code <= 2 {
			return nil
		}
	}
	return fmt.Errorf("subscribe %s: refused, code %#x", filter, code)
}

// Publish publishes one message from a short-lived client and waits for the
// broker's acknowledgement.
func Publish(t testing.TB, url, topic string, payload []byte, retained bool) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(url).
		SetClientID(fmt.Sprintf("mqtttest-pub-%d-%d", os.Getpid(), time.Now().UnixNano())).
		SetConnectTimeout(readyWait)
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(readyWait) || tok.Error() != nil {
		t.Fatalf("publisher connect to %s: %v", url, tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish(topic, 1, retained, payload); !tok.WaitTimeout(readyWait) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// Await returns the first message from ch for which match returns true,
// failing the test if ch yields none within a generous bound (a guard
// against hanging, not an assertion about speed).
func Await(t testing.TB, ch <-chan Message, what string, match func(Message) bool) Message {
	t.Helper()
	timeout := time.NewTimer(readyWait)
	defer timeout.Stop()
	for {
		select {
		case m := <-ch:
			if match(m) {
				return m
			}
		case <-timeout.C:
			t.Fatalf("no message %s within %s", what, readyWait)
			return Message{}
		}
	}
}

// WithUser returns the broker URL raw with user and password in it, as
// paho reads them (the embedded broker refuses anonymous clients).
func WithUser(raw, user, password string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// Reader returns the broker URL raw with the credentials of the reader
// account of a plugs daemon's embedded broker, read from its state
// directory (<state>/broker/reader.password).
func Reader(t testing.TB, raw, stateDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "broker", "reader.password"))
	if err != nil {
		t.Fatalf("reader password: %v", err)
	}
	return WithUser(raw, "reader", strings.TrimSpace(string(b)))
}
