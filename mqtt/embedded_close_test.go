package mqtt

import (
	"fmt"
	"sync"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
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
