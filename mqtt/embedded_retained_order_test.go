package mqtt

import (
	"fmt"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// TestEmbeddedRetainedNotOlderThanLive: a subscriber that subscribes while
// the daemon flips its retained states running -> stopped (Embedded.Publish,
// the inline client) must end with the newest state of every topic. Upstream
// mochi queued a new subscription's retained messages after live publishes
// fanned out meanwhile, so a stale "running" could come after "stopped" and
// stay the subscriber's last word on a dead instance.
func TestEmbeddedRetainedNotOlderThanLive(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	url := withUser(e.URL(), ReaderUsername, e.auth.password(ReaderUsername))
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("order-reader").
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false).SetOrderMatters(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(0)

	const rounds, topics = 40, 50
	for r := range rounds {
		topic := func(i int) string { return fmt.Sprintf("plugs/order%d/i%d/state", r, i) }
		for i := range topics {
			if err := e.Publish(topic(i), []byte("running")); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		last := map[string]string{}
		end := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range topics {
				if err := e.Publish(topic(i), []byte("stopped")); err != nil {
					t.Error(err)
				}
			}
		})
		tok := c.Subscribe(fmt.Sprintf("plugs/order%d/#", r), 1, func(_ paho.Client, m paho.Message) {
			if m.Topic() == fmt.Sprintf("plugs/order%d/end", r) {
				close(end)
				return
			}
			mu.Lock()
			last[m.Topic()] = string(m.Payload())
			mu.Unlock()
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
		wg.Wait()
		// Published after every "stopped": queued to the subscriber after them.
		if err := e.srv.Publish(fmt.Sprintf("plugs/order%d/end", r), []byte("x"), false, 1); err != nil {
			t.Fatal(err)
		}
		select {
		case <-end:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: end marker never arrived", r)
		}
		mu.Lock()
		for i := range topics {
			if got := last[topic(i)]; got != "stopped" {
				t.Errorf("round %d: last message on %s is %q, want the retained \"stopped\"", r, topic(i), got)
			}
		}
		mu.Unlock()
		if t.Failed() {
			return
		}
		c.Unsubscribe(fmt.Sprintf("plugs/order%d/#", r)).WaitTimeout(10 * time.Second)
	}
}
