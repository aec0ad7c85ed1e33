package mqtt

import (
	"fmt"
	"io"
	"net"
	"strings"
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

// TestEmbeddedSubscriberNotReadingDoesNotStallPublish: a client that stops
// reading and then subscribes leaves the broker blocked on its SUBACK
// write; the daemon's publishes (Embedded.Publish) to topics it matches
// must still return: they are held for it, not waited on.
func TestEmbeddedSubscriberNotReadingDoesNotStallPublish(t *testing.T) {
	e, err := StartEmbedded("127.0.0.1:0", testAuth(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL(), "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	packet := func(head byte, body []byte) []byte {
		out := []byte{head}
		for n := len(body); ; {
			b := byte(n % 128)
			if n /= 128; n > 0 {
				b |= 128
			}
			out = append(out, b)
			if n == 0 {
				break
			}
		}
		return append(out, body...)
	}
	connect := append(append(str("MQTT"), 4, 0xC2, 0, 60), str("stalled-reader")...)
	connect = append(append(connect, str(ReaderUsername)...), str(e.auth.password(ReaderUsername))...)
	subscribe := func(id byte, filter string) []byte {
		return packet(0x82, append(append([]byte{0, id}, str(filter)...), 0))
	}
	if _, err := conn.Write(packet(0x10, connect)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	ack := make([]byte, 4+5) // CONNACK, then the first SUBACK
	if _, err := io.ReadFull(conn, ack[:4]); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("connack %x: %v", ack[:4], err)
	}
	if _, err := conn.Write(subscribe(1, "plugs/big/#")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(conn, ack[4:]); err != nil || ack[4] != 0x90 {
		t.Fatalf("suback %x: %v", ack[4:], err)
	}
	// From here on the client reads nothing: 32 MiB fill every buffer.
	big := make([]byte, 256<<10)
	for range 128 {
		if err := e.srv.Publish("plugs/big/x", big, false, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Write(subscribe(2, "plugs/x/#")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the broker is in that SUBSCRIBE now
	done := make(chan error, 1)
	go func() { done <- e.Publish("plugs/x/i/state", []byte("stopped")) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		conn.Close() // unblocks the broker, and the publish
		<-done
		t.Fatal("a publish waited for a subscriber that does not read")
	}
}
