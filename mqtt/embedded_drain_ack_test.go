package mqtt

import (
	"context"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// TestEmbeddedDrainBoundedByUnackedSubscriber: a subscriber that never
// acknowledges a QoS 1 message (hostile, or hung) holds Drain only until
// its deadline, and the broker still closes; once it acknowledges, Drain
// returns at once.
func TestEmbeddedDrainBoundedByUnackedSubscriber(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	got := make(chan *paho.Publish, 1)
	c, _ := v5With(t, e, DaemonUsername, "plugs-test-noack", nil, paho.ClientConfig{EnableManualAcknowledgment: true,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			select {
			case got <- pr.Packet:
			default:
			}
			return true, nil
		}}})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "plugs/noack/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Publish("plugs/noack/status", []byte(StatusOffline)); err != nil {
		t.Fatal(err)
	}
	var p *paho.Publish
	select {
	case p = <-got:
	case <-ctx.Done():
		t.Fatal("the subscriber got no message")
	}

	dctx, dcancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer dcancel()
	start := time.Now()
	if err := e.Drain(dctx, "gone-already"); err == nil {
		t.Error("Drain returned while a QoS 1 message was not acknowledged")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Drain took %s past its 300 ms deadline", took)
	}

	if err := c.Ack(p); err != nil {
		t.Fatal(err)
	}
	actx, acancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer acancel()
	if err := e.Drain(actx, "gone-already"); err != nil {
		t.Errorf("Drain after the acknowledgement: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = e.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung")
	}
}
