package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/plugs-dev/plugs/internal/mqtttest"
)

// startLocalPublisher starts a Publisher on e as the daemon does: connected
// with the daemon's account, its messages published in the broker
// (Config.Local = e.Publish); it returns once connected.
func startLocalPublisher(t testing.TB, e *Embedded, host string) *Publisher {
	t.Helper()
	url := withUser(e.URL(), DaemonUsername, e.auth.password(DaemonUsername))
	p := NewPublisher(Config{URL: url, Host: host, KeepAlive: -1, RunID: testRunID, Local: e.Publish})
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !p.Connected(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("publisher not connected in 10 s")
		}
	}
	return p
}

// TestLocalStopDeliversEveryFinalState: a subscriber connected during a
// stop of n instances published in the broker's process gets, before
// "offline", the final "stopped" state of every instance (pid 0), whatever
// of "stopping" the queue coalesced; one connecting after the stop gets the
// same from the retained messages; and "offline" is retained.
func TestLocalStopDeliversEveryFinalState(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const host, n = "local", 400
	url := withUser(e.URL(), ReaderUsername, e.auth.password(ReaderUsername))
	p := startLocalPublisher(t, e, host)
	for i := range n {
		p.PublishState("p", fmt.Sprint(i), StateMessage{State: "running", PID: 1000 + i})
	}
	sub := mqtttest.Subscribe(t, url, "plugs/"+host+"/#")
	seen := map[string]bool{} // the retained "running" states first
	for len(seen) < n {
		m := mqtttest.Await(t, sub, "running states", func(m mqtttest.Message) bool { return m.Topic != StatusTopic(host) && m.Topic != RunTopic(host) })
		seen[m.Topic] = true
	}
	// The stop: half the instances say "stopped" themselves, the others
	// are left to Close, as a stop cut short leaves them.
	for i := range n {
		p.PublishState("p", fmt.Sprint(i), StateMessage{State: "stopping", PID: 1000 + i})
	}
	for i := range n / 2 {
		p.PublishState("p", fmt.Sprint(i), StateMessage{State: StateStopped})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := e.Drain(ctx, p.ClientID()); err != nil {
		t.Fatalf("Drain: %v", err)
	}

	final := map[string]StateMessage{}
	mqtttest.Await(t, sub, "offline", func(m mqtttest.Message) bool {
		if m.Topic == StatusTopic(host) {
			return string(m.Payload) == StatusOffline
		}
		var s StateMessage
		if err := json.Unmarshal(m.Payload, &s); err == nil {
			final[m.Topic] = s
		}
		return false
	})
	checkStopped := func(who string, got map[string]StateMessage) {
		t.Helper()
		for i := range n {
			topic := StateTopic(host, "p", fmt.Sprint(i))
			if s, ok := got[topic]; !ok || s.State != StateStopped || s.PID != 0 || s.Run != testRunID {
				t.Fatalf("%s: last state of %s = %+v (seen %v), want stopped, pid 0, run %s", who, topic, s, ok, testRunID)
			}
		}
	}
	checkStopped("subscriber during the stop", final)

	late := mqtttest.Subscribe(t, url, "plugs/"+host+"/#")
	retained := map[string]StateMessage{}
	offline := false
	for len(retained) < n || !offline {
		m := mqtttest.Await(t, late, "retained messages", func(m mqtttest.Message) bool { return m.Retained && m.Topic != RunTopic(host) })
		if m.Topic == StatusTopic(host) {
			if string(m.Payload) != StatusOffline {
				t.Fatalf("retained status %q, want offline", m.Payload)
			}
			offline = true
			continue
		}
		var s StateMessage
		if err := json.Unmarshal(m.Payload, &s); err == nil {
			retained[m.Topic] = s
		}
	}
	checkStopped("subscriber after the stop", retained)
}

// TestLocalForgetClearsRetained: Forget through Config.Local clears the
// instance's retained state.
func TestLocalForgetClearsRetained(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p := startLocalPublisher(t, e, "forget")
	p.PublishState("gone", "default", StateMessage{State: "running", PID: 7})
	p.PublishState("kept", "default", StateMessage{State: "running", PID: 8})
	p.Forget("gone", "default")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := e.srv.Topics.Messages(StateTopic("forget", "gone", "default")); len(got) != 0 {
		t.Errorf("forgotten instance still retained: %d messages", len(got))
	}
	if got := e.srv.Topics.Messages(StateTopic("forget", "kept", "default")); len(got) != 1 {
		t.Errorf("kept instance: %d retained messages, want 1", len(got))
	}
}

// TestEmbeddedRefusesInlineClientID: no account may connect as the
// broker's own client ("inline", Embedded.Publish's): a session takeover
// would end it.
func TestEmbeddedRefusesInlineClientID(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, user := range []string{DaemonUsername, ReaderUsername} {
		url := withUser(e.URL(), user, e.auth.password(user))
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("inline").SetConnectTimeout(5 * time.Second).SetAutoReconnect(false))
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatalf("%s: connect as inline: no answer", user)
		}
		if tok.Error() == nil {
			c.Disconnect(0)
			t.Fatalf("%s: connected as the broker's inline client", user)
		}
	}
	if err := e.Publish("plugs/inline/check", []byte("x")); err != nil {
		t.Fatalf("Publish after the refused takeovers: %v", err)
	}
	if got := e.srv.Topics.Messages("plugs/inline/check"); len(got) != 1 {
		t.Errorf("retained after Publish: %d, want 1", len(got))
	}
}
