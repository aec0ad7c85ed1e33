package mqtt

import (
	"context"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/internal/mqtttest"
)

type dataEvent struct{ plug, instance string }

// TestWatchData: the publisher sees its host's data topics (names
// unescaped), not other hosts'.
func TestWatchData(t *testing.T) {
	brokers(t, func(t *testing.T, url string) {
		got := make(chan dataEvent, 16)
		p := NewPublisher(fastConfig(url, "edge-01"))
		p.WatchData(func(plug, instance string, at time.Time) {
			if at.IsZero() {
				t.Error("zero receive time")
			}
			got <- dataEvent{plug, instance}
		})
		sub := mqtttest.Subscribe(t, url, "plugs/edge-01/status")
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer closePublisher(t, p)
		mqtttest.Await(t, sub, "online", isPayload(StatusTopic("edge-01"), StatusOnline))
		// The subscription is made in the connect handler; a message on
		// another host's topic, then ours, proves it is in place and filtered.
		for range 50 {
			mqtttest.Publish(t, url, DataTopic("edge-02", "hr", "a"), []byte("{}"), false)
			mqtttest.Publish(t, url, DataTopic("edge-01", "heart+rate", "p/17"), []byte("{}"), false)
			select {
			case ev := <-got:
				if ev != (dataEvent{"heart+rate", "p/17"}) {
					t.Fatalf("event %+v", ev)
				}
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
		t.Fatal("no data event")
	})
}

func TestParseDataTopic(t *testing.T) {
	for topic, want := range map[string]dataEvent{
		"plugs/h/hr/p17/data":         {"hr", "p17"},
		DataTopic("h", "a/b", "c%d#"): {"a/b", "c%d#"},
	} {
		plug, inst, ok := parseDataTopic(topic)
		if !ok || (dataEvent{plug, inst}) != want {
			t.Errorf("%s: %q %q %t", topic, plug, inst, ok)
		}
	}
	for _, bad := range []string{"plugs/h/hr/data", "plugs/h/hr/p/state", "x/h/hr/p/data"} {
		if _, _, ok := parseDataTopic(bad); ok {
			t.Errorf("%s parsed", bad)
		}
	}
}
