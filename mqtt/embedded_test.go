package mqtt

import (
	"bytes"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/plugs-dev/plugs/internal/mqtttest"
)

func TestEmbeddedRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:1883", "[::]:0", "example.org:1883", "127.0.0.1"} {
		e, err := StartEmbedded(addr, testAuth(t), nil)
		if err == nil {
			_ = e.Close()
			t.Errorf("StartEmbedded(%q) = nil error, want a refusal", addr)
		}
	}
	e, err := StartEmbedded("localhost:0", testAuth(t), nil)
	if err == nil {
		if _, nerr := StartEmbedded("127.0.0.1:0", nil, nil); nerr == nil {
			t.Error("StartEmbedded without credentials = nil error, want a refusal")
		}
	}
	if err != nil {
		t.Fatalf("StartEmbedded(localhost:0): %v", err)
	}
	defer e.Close()
	if !strings.HasPrefix(e.Addr(), "127.0.0.1:") || e.URL() != "tcp://"+e.Addr() {
		t.Errorf("Addr() = %q, URL() = %q", e.Addr(), e.URL())
	}
}

func TestAuthHookRefusesNonLoopback(t *testing.T) {
	a := testAuth(t)
	h := &authHook{auth: a}
	user, pw := a.Reader()
	login := packets.Packet{Connect: packets.ConnectParams{Username: []byte(user), Password: []byte(pw), UsernameFlag: true, PasswordFlag: true}}
	for remote, want := range map[string]bool{
		"127.0.0.1:5000": true,
		"127.8.9.10:1":   true,
		"[::1]:5000":     true,
		"10.1.2.3:5000":  false,
		"[2001:db8::1]:": false,
		"":               false,
	} {
		cl := &mochi.Client{ID: "c", Net: mochi.ClientConnection{Remote: remote}}
		if got := h.OnConnectAuthenticate(cl, login); got != want {
			t.Errorf("OnConnectAuthenticate from %q = %v, want %v", remote, got, want)
		}
	}
	if !h.Provides(mochi.OnConnectAuthenticate) || !h.Provides(mochi.OnACLCheck) || h.Provides(mochi.OnPublish) {
		t.Error("hook provides the wrong events")
	}
}

// TestEmbeddedKeepsRetainedMessages plants a retained message two days old
// (mochi's default would expire it after 24 h) and checks that it survives
// the broker's expiry sweep, which runs here for an MQTT 5 message that
// expires after a second.
func TestEmbeddedKeepsRetainedMessages(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := e.MessageExpiry(); got != 0 {
		t.Fatalf("MessageExpiry() = %d, want 0 (never)", got)
	}
	old := time.Now().Add(-48 * time.Hour).Unix()
	e.srv.Topics.RetainMessage(packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Publish, Retain: true, Qos: 1},
		TopicName:       "plugs/old/status",
		Payload:         []byte(StatusOnline),
		Created:         old,
		ProtocolVersion: 4,
	})
	a := e.auth
	mqtttest.Publish(t, withUser(e.URL(), DaemonUsername, a.password(DaemonUsername)), "plugs/new/status", []byte(StatusOnline), true)
	c, _ := v5(t, e, DaemonUsername, "plugs-test-v5", nil, nil)
	if _, err := c.Publish(t.Context(), &paho.Publish{Topic: "plugs/short/status", QoS: 1, Retain: true, Payload: []byte("x"),
		Properties: &paho.PublishProperties{MessageExpiry: u32(1)}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) { // until the sweep ran
		if _, ok := e.srv.Topics.Retained.Get("plugs/short/status"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no expiry sweep in 3 s")
		}
	}

	got := retained(t, withUser(e.URL(), DaemonUsername, a.password(DaemonUsername)), "plugs/+/status", "plugs/sentinel/embedded")
	for _, topic := range []string{"plugs/old/status", "plugs/new/status"} {
		if got[topic] != StatusOnline {
			t.Errorf("retained %s = %q after the expiry sweep, want online", topic, got[topic])
		}
	}
}

// TestBrokerLogDropsPackets: mochi logs a failing packet whole, and a
// CONNECT packet carries the client's password.
func TestBrokerLogDropsPackets(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(dropPacketAttrs{slog.NewTextHandler(&buf, nil)}).With("pk", "with-attrs-secret")
	log.Warn("error processing packet", "client", "c1", "pk", packets.Packet{Connect: packets.ConnectParams{Password: []byte("planted-secret")}})
	out := buf.String()
	if strings.Contains(out, "secret") || !strings.Contains(out, "client=c1") {
		t.Errorf("log line = %q; want the client and no packet", out)
	}
}

// testAuth is an Auth with a fixed key.
func testAuth(t testing.TB) *Auth {
	t.Helper()
	a, err := NewAuth([]byte("0123456789abcdef-test-key"))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// withUser puts credentials into a broker URL, as paho reads them.
func withUser(raw, user, password string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}
