package mqtt

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/plugs-dev/plugs/internal/mqtttest"
)

// The embedded broker is mochi-mqtt with the plugs patch of
// third_party/mochi-mqtt-server: its expiry sweeps run when something is
// due, not every second. These tests hold both halves: an idle broker does
// no work, and what MQTT 5 says expires still does.

// heapAllocBytes is the bytes the process has allocated on the heap so far.
func heapAllocBytes() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestEmbeddedIdleSweepsNothing: with 1,000 retained states (one per
// instance at N = 1,000) and a connected client, an idle broker allocates
// nothing in 2.5 s. Unpatched, mochi copied every retained message once a
// second (about 1.4 MB in that time), which was most of the daemon's idle
// CPU.
func TestEmbeddedIdleSweepsNothing(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for i := range 1000 {
		e.srv.Topics.RetainMessage(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true, Qos: 1},
			TopicName:   fmt.Sprintf("plugs/h/p%d/default/state", i),
			Payload:     []byte(`{"state":"running","pid":1234,"version":"1.0.0","revision":"abc","restarts":0,"since":"2026-01-01T00:00:00Z","run":"0123456789abcdef"}`),
			Created:     time.Now().Unix(), ProtocolVersion: 4,
		})
	}
	a := e.auth
	url := withUser(e.URL(), DaemonUsername, a.password(DaemonUsername))
	sub := mqtttest.Subscribe(t, url, "plugs/h/p999/default/state") // a connected client, and the retained state delivered
	mqtttest.Await(t, sub, "the retained state", func(m mqtttest.Message) bool { return m.Retained })

	runtime.GC()
	before := heapAllocBytes()
	time.Sleep(2500 * time.Millisecond)
	allocated := heapAllocBytes() - before
	t.Logf("idle embedded broker, 1,000 retained messages: %d bytes allocated in 2.5 s", allocated)
	if allocated > 64<<10 {
		t.Errorf("an idle broker allocated %d bytes in 2.5 s; want none (a periodic sweep is back?)", allocated)
	}
}

// v5 is a raw MQTT 5 client of e under account user: the connection is its
// own, so that a test can drop it without a DISCONNECT.
func v5(t *testing.T, e *Embedded, user, clientID string, cp *paho.Connect, onMsg func(*paho.Publish)) (*paho.Client, net.Conn) {
	t.Helper()
	var cfg paho.ClientConfig
	if onMsg != nil {
		cfg.OnPublishReceived = []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) { onMsg(pr.Packet); return true, nil }}
	}
	return v5With(t, e, user, clientID, cp, cfg)
}

// v5With is v5 with the client's configuration cfg (its ClientID and
// Conn are set here).
func v5With(t *testing.T, e *Embedded, user, clientID string, cp *paho.Connect, cfg paho.ClientConfig) (*paho.Client, net.Conn) {
	t.Helper()
	conn, err := net.Dial("tcp", e.Addr())
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientID, cfg.Conn = clientID, conn
	c := paho.NewClient(cfg)
	if cp == nil {
		cp = &paho.Connect{}
	}
	cp.ClientID, cp.KeepAlive, cp.CleanStart = clientID, 30, true
	cp.Username, cp.UsernameFlag = user, true
	cp.Password, cp.PasswordFlag = []byte(e.auth.password(user)), true
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ack, err := c.Connect(ctx, cp)
	if err != nil {
		t.Fatalf("connect %s: %v", clientID, err)
	}
	if ack.ReasonCode != 0 {
		t.Fatalf("connect %s: reason %d", clientID, ack.ReasonCode)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return c, conn
}

func u32(v uint32) *uint32 { return &v }

// TestEmbeddedExpiresV5RetainedMessage: a retained message published with
// a message expiry of 1 s is gone from the broker 1–3 s later (the sweep
// for its deadline ran), while one without an expiry stays.
func TestEmbeddedExpiresV5RetainedMessage(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c, _ := v5(t, e, DaemonUsername, "plugs-test-v5", nil, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, p := range []*paho.Publish{
		{Topic: "plugs/h/short", QoS: 1, Retain: true, Payload: []byte("short"), Properties: &paho.PublishProperties{MessageExpiry: u32(1)}},
		{Topic: "plugs/h/kept", QoS: 1, Retain: true, Payload: []byte("kept")},
	} {
		if _, err := c.Publish(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := e.srv.Topics.Retained.Get("plugs/h/short"); !ok {
		t.Fatal("the expiring message was not retained at all")
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, short := e.srv.Topics.Retained.Get("plugs/h/short")
		if !short {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a retained message with a 1 s expiry is still on the broker after 3 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := e.srv.Topics.Retained.Get("plugs/h/kept"); !ok {
		t.Error("the message without an expiry went too")
	}
}

// TestEmbeddedDelayedWill: an MQTT 5 client that drops its connection with
// a will delayed by 1 s has its will published after that second, not at
// once (the sweep for the delay ran); a will without a delay, the kind the
// daemon sets for "offline", is published at once.
func TestEmbeddedDelayedWill(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	got := make(chan string, 4)
	rd, _ := v5(t, e, ReaderUsername, "reader-v5", nil, func(p *paho.Publish) { got <- string(p.Payload) })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := rd.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "plugs/h/will/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}

	_, now := v5(t, e, DaemonUsername, "plugs-will-now", &paho.Connect{
		WillMessage: &paho.WillMessage{Topic: "plugs/h/will/now", QoS: 1, Payload: []byte("now")},
	}, nil)
	dropped := time.Now()
	_ = now.Close()
	select {
	case m := <-got:
		if m != "now" || time.Since(dropped) > 900*time.Millisecond {
			t.Fatalf("got %q %v after the drop; want the undelayed will at once", m, time.Since(dropped))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no will without a delay")
	}

	_, later := v5(t, e, DaemonUsername, "plugs-will-later", &paho.Connect{
		Properties:     &paho.ConnectProperties{SessionExpiryInterval: u32(60)},
		WillMessage:    &paho.WillMessage{Topic: "plugs/h/will/later", QoS: 1, Payload: []byte("later")},
		WillProperties: &paho.WillProperties{WillDelayInterval: u32(1)},
	}, nil)
	dropped = time.Now()
	_ = later.Close()
	select {
	case m := <-got:
		if after := time.Since(dropped); m != "later" || after < 900*time.Millisecond {
			t.Fatalf("got %q %v after the drop; want the will delayed by 1 s", m, after)
		}
	case <-time.After(4 * time.Second):
		t.Fatal("the delayed will was not sent within 4 s")
	}
}

// TestEmbeddedExpiresSession: an MQTT 5 session with a 1 s expiry is gone
// 1–3 s after its client left (a reconnect finds no session), while the
// client is kept before that.
func TestEmbeddedExpiresSession(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, conn := v5(t, e, ReaderUsername, "reader-session", &paho.Connect{
		Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(1)},
	}, nil)
	_ = conn.Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		cl, ok := e.srv.Clients.Get("reader-session")
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a session with a 1 s expiry is still on the broker 3 s after its client left (stopped at %d)", cl.StopTime())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPublisherKeepAlive: the daemon's connection to its own embedded
// broker has no keepalive (KeepAlive < 0: paho sends no pings, so nothing
// wakes an idle daemon every 5 s); by default it is 30 s, for brokers
// elsewhere.
func TestPublisherKeepAlive(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	du, dp := e.auth.Daemon()
	for _, c := range []struct {
		keepAlive time.Duration
		want      uint16
	}{{-1, 0}, {0, 30}} {
		host := fmt.Sprintf("ka%d", c.want)
		p := NewPublisher(Config{URL: e.URL(), Username: du, Password: dp, Host: host, KeepAlive: c.keepAlive, RetryInterval: 50 * time.Millisecond})
		if err := p.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !p.Connected() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cl, ok := e.srv.Clients.Get(daemonClientIDPrefix + host)
		if !ok {
			t.Fatalf("KeepAlive %v: the publisher is not connected", c.keepAlive)
		}
		if cl.State.Keepalive != c.want {
			t.Errorf("KeepAlive %v: the broker sees keepalive %d s, want %d", c.keepAlive, cl.State.Keepalive, c.want)
		}
		closePublisher(t, p)
	}
}

// BenchmarkEmbeddedRetainedPublish is the broker's hot path the expiry
// patch touches: a retained QoS 1 state publish (the daemon's), acked, over
// the topics of 1,000 instances. The patch adds one schedule call per
// retained message and per inflight packet (a load and a compare when
// nothing expires).
func BenchmarkEmbeddedRetainedPublish(b *testing.B) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	conn, err := net.Dial("tcp", e.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := paho.NewClient(paho.ClientConfig{ClientID: "plugs-bench", Conn: conn})
	ctx := context.Background()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "plugs-bench", KeepAlive: 30, CleanStart: true,
		Username: DaemonUsername, UsernameFlag: true, Password: []byte(e.auth.password(DaemonUsername)), PasswordFlag: true}); err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"state":"running","pid":1234,"version":"1.0.0","revision":"abc","restarts":0,"since":"2026-01-01T00:00:00Z","run":"0123456789abcdef"}`)
	i := 0
	for b.Loop() {
		if _, err := c.Publish(ctx, &paho.Publish{Topic: fmt.Sprintf("plugs/h/p%d/default/state", i%1000), QoS: 1, Retain: true, Payload: payload}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
