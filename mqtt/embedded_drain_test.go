package mqtt

import (
	"context"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/plugs-dev/plugs/internal/mqtttest"
)

// TestEmbeddedDrainDeliversLastMessages: the daemon publishes its last
// messages (every instance stopped, then "offline"), disconnects, and stops
// the broker it embeds. A subscriber must get them all: the broker
// acknowledges a publish before it fans it out, so closing it at once cut
// subscribers off before "offline" reached them (seen under load in e2e).
func TestEmbeddedDrainDeliversLastMessages(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	url := withUser(e.URL(), DaemonUsername, e.auth.password(DaemonUsername))
	sub := mqtttest.Subscribe(t, url, "plugs/drain/#")

	const id, n = "plugs-drain-test", 500
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetConnectTimeout(10 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	var last paho.Token
	for i := range n {
		last = c.Publish(fmt.Sprintf("plugs/drain/p/%d/state", i), 1, true, []byte(`{"state":"stopped","pid":0}`))
	}
	if !last.WaitTimeout(10*time.Second) || last.Error() != nil {
		t.Fatalf("publish: %v", last.Error())
	}
	if tok := c.Publish("plugs/drain/status", 1, true, []byte(StatusOffline)); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish offline: %v", tok.Error())
	}
	c.Disconnect(250)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Drain(ctx, id); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// QoS 1 is at least once: a state may come twice, none may be missing.
	states := map[string]bool{}
	mqtttest.Await(t, sub, "offline after the broker closed", func(m mqtttest.Message) bool {
		if m.Topic != "plugs/drain/status" {
			states[m.Topic] = true
		}
		return m.Topic == "plugs/drain/status" && string(m.Payload) == StatusOffline
	})
	if len(states) != n {
		t.Errorf("subscriber got %d of the %d stopped states before offline", len(states), n)
	}
}
