package mqtt

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// TestEmbeddedCloseWhileClientsLeave: the broker's client map is listed by
// listener (Server.Close does) while clients leave it (each disconnect
// deletes one). Upstream read-locked it twice in GetByListener, which
// deadlocks once a Delete waits between the two locks: a daemon whose
// stop hung (third_party/mochi-mqtt-server/README.plugs.md).
func TestEmbeddedCloseWhileClientsLeave(t *testing.T) {
	cl := mochi.NewClients()
	for i := range 64 {
		cl.Add(&mochi.Client{ID: fmt.Sprint("c", i), Net: mochi.ClientConnection{Listener: "plugs"}})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for i := range 20000 {
			wg.Go(func() { cl.Delete(fmt.Sprint("gone", i)) })
			_ = cl.GetByListener("plugs")
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("GetByListener and Delete deadlocked")
	}
}

// TestEmbeddedRetainWhileSubscribing: a retained publish sets its topic's
// retainPath while a wildcard subscribe scans the index for retained
// messages. Upstream scanned unlocked, a data race the race detector saw in
// CI (TestEmbeddedBrokerAccessControl: the daemon's retained states and a
// reader's plugs/# subscription). Bounded: 2,000 rounds of each.
func TestEmbeddedRetainWhileSubscribing(t *testing.T) {
	x := mochi.NewTopicsIndex()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 2000 {
			topic := fmt.Sprint("plugs/p", i%50, "/status")
			pl := []byte("running")
			if i%3 == 0 {
				pl = nil // a delete: retainPath cleared, the particle trimmed
			}
			x.RetainMessage(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true}, TopicName: topic, Payload: pl})
		}
	})
	for range 2000 {
		for _, pk := range x.Messages("plugs/#") {
			if !strings.HasPrefix(pk.TopicName, "plugs/p") || len(pk.Payload) == 0 {
				t.Fatalf("Messages(plugs/#) returned %q %q", pk.TopicName, pk.Payload)
			}
		}
	}
	wg.Wait()
	// Each topic's last publish is round 1950+k; those of k%3 == 0 deleted it.
	if got := len(x.Messages("plugs/+/status")); got != 33 {
		t.Errorf("after the publishes, %d retained messages match plugs/+/status, want 33", got)
	}
}
