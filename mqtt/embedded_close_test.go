package mqtt

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/plugs-dev/plugs/internal/mqtttest"
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

// TestEmbeddedCloseWithConnectionStillConnecting: a client whose TCP
// connection is accepted but has not sent its CONNECT yet (one that
// connects as the daemon stops, or a stalled process) is not in the
// broker's client map, so Close did not disconnect it and waited for it
// forever: upstream sets no deadline before CONNECT. Close must end such a
// connection, and one accepted while it closes, and return.
func TestEmbeddedCloseWithConnectionStillConnecting(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", e.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Connections that keep arriving while the broker closes (bounded).
	stop := make(chan struct{})
	var dialers sync.WaitGroup
	dialers.Go(func() {
		for range 2000 {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.Dial("tcp", e.Addr())
			if err != nil {
				return // the listener is closed
			}
			defer c.Close()
		}
	})
	// A client that connects after it: the listener accepts in order, so
	// the first connection is accepted and its broker goroutine started.
	mqtttest.Subscribe(t, withUser(e.URL(), DaemonUsername, e.auth.password(DaemonUsername)), "plugs/close/#")
	closed := make(chan struct{})
	go func() { _ = e.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close waited for a connection that never sent CONNECT")
	}
	close(stop)
	dialers.Wait()
	// The broker hung up on it.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read from the connection after Close = %v, want EOF or reset", err)
	}
}
