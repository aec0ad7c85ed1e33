package mqtt

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"
)

// liveHeapBytes is the heap in use after two collections.
func liveHeapBytes() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestEmbeddedRetainedStateMemory: a retained instance state costs the
// embedded broker at most 2 KB of heap (third_party/mochi-mqtt-server's
// compact retained packets and topic levels that make their maps on first
// use; 1.64 KB measured, 2.80 KB unpatched), for the 1,000 states of
// N = 1,000 instances.
func TestEmbeddedRetainedStateMemory(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	payload := []byte(`{"plug":"p0001","instance":"default","state":"running","pid":123456,"since":"2026-12-03T12:00:00Z","restarts":0,"reason":"","healthy":true}`)
	n0 := e.srv.Topics.Retained.Len() // the broker's own $SYS topics
	before := liveHeapBytes()
	for i := range 1000 {
		if err := e.Publish(StateTopic("vm", fmt.Sprintf("p%04d", i), "default"), payload); err != nil {
			t.Fatal(err)
		}
	}
	each := (liveHeapBytes() - before) / 1000
	t.Logf("1,000 retained states: %d bytes of heap each (payload %d)", each, len(payload))
	if each > 2048 {
		t.Errorf("a retained state costs %d bytes of heap; want at most 2048", each)
	}
	if n := e.srv.Topics.Retained.Len() - n0; n != 1000 {
		t.Errorf("%d states retained, want 1000", n)
	}
}

// TestEmbeddedRetainedPacketsRoundTrip: what the broker retains is given
// back exactly as it was stored, in the compact form (no properties: the
// daemon's states) and in the whole one (MQTT 5 properties), and an MQTT 5
// subscriber receives a retained message's properties.
func TestEmbeddedRetainedPacketsRoundTrip(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	plain := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true, Qos: 1, Remaining: 7},
		TopicName:   "plugs/h/plain/default/state", Payload: []byte(`{"a":1}`), Origin: "inline",
		Created: 1700000000, Expiry: 1700000100, PacketID: 7, ProtocolVersion: 4, Mods: packets.Mods{MaxSize: 9},
	}
	v5 := plain
	v5.TopicName = "plugs/h/v5/default/state"
	v5.Properties = packets.Properties{ContentType: "application/json", User: []packets.UserProperty{{Key: "k", Val: "v"}}, MessageExpiryInterval: 60}
	empty := plain
	empty.TopicName = "plugs/h/empty/default/state"
	empty.ReasonCodes = []byte{} // empty, not nil: kept as it is
	for _, pk := range []packets.Packet{plain, v5, empty} {
		e.srv.Topics.RetainMessage(pk)
		got, ok := e.srv.Topics.Retained.Get(pk.TopicName)
		if !ok {
			t.Fatalf("%s not retained", pk.TopicName)
		}
		if !reflect.DeepEqual(got, pk) {
			t.Errorf("%s: retained\n%+v\ngiven back\n%+v", pk.TopicName, pk, got)
		}
		if all := e.srv.Topics.Retained.GetAll(); !reflect.DeepEqual(all[pk.TopicName], pk) {
			t.Errorf("%s: GetAll gives back %+v", pk.TopicName, all[pk.TopicName])
		}
	}

	pub := v5Client(t, e, "plugs-test-pub", nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := pub.Publish(ctx, &paho.Publish{Topic: "plugs/h/props", QoS: 1, Retain: true, Payload: []byte("with properties"),
		Properties: &paho.PublishProperties{ContentType: "text/plain", User: paho.UserProperties{{Key: "unit", Value: "bpm"}}}}); err != nil {
		t.Fatal(err)
	}
	got := make(chan *paho.Publish, 1)
	sub := v5Client(t, e, "plugs-test-sub", func(p *paho.Publish) {
		select {
		case got <- p:
		default:
		}
	})
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "plugs/h/props", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if string(p.Payload) != "with properties" || !p.Retain || p.Properties == nil || p.Properties.ContentType != "text/plain" || p.Properties.User.Get("unit") != "bpm" {
			t.Errorf("the retained message arrived as %+v (properties %+v)", p, p.Properties)
		}
	case <-ctx.Done():
		t.Fatal("the retained message was not delivered to a new subscriber")
	}
}

// v5Client is v5 under the daemon's account.
func v5Client(t *testing.T, e *Embedded, clientID string, onMsg func(*paho.Publish)) *paho.Client {
	c, _ := v5(t, e, DaemonUsername, clientID, nil, onMsg)
	return c
}
