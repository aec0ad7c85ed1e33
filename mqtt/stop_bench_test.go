package mqtt

import (
	"context"
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// BenchmarkStopStates1000VsBare is the MQTT side of a daemon stop with
// 1,000 instances on the embedded broker: the runner's observer publishes
// "stopping", then "stopped", for each (at once: on a loaded host, or 2
// cores busy with 1,000 exits, the states come faster than one publisher
// connection sends them, and the queue holds what is left), then the
// daemon closes the
// Publisher (every state sent, "offline" acknowledged, disconnected) and
// drains the broker. tail-ms is that close and drain after the last state:
// what the daemon's exit waits for. The baseline, measured in the same
// iterations, is a bare paho client publishing the same messages at once
// (never waiting for an acknowledgement), and then "offline";
// bare-tail-ms is from its last state until "offline" is acknowledged and
// it disconnected. x-bare is the ratio of the tails.
func BenchmarkStopStates1000VsBare(b *testing.B) {
	const n = 1000
	e, err := StartEmbedded("127.0.0.1:0", testAuth(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	url := withUser(e.URL(), DaemonUsername, e.auth.password(DaemonUsername))
	var pubT, bareT time.Duration
	for b.Loop() {
		b.StopTimer()
		p := NewPublisher(Config{URL: url, Host: "bench", ClientID: "plugs-bench", KeepAlive: -1, RunID: testRunID})
		if err := p.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		for i := range n {
			p.PublishState("p", fmt.Sprint(i), StateMessage{State: "running", PID: 1000 + i})
		}
		awaitSent(b, p)
		for k := range 2 * n {
			st := "stopping"
			if k >= n {
				st = StateStopped
			}
			p.PublishState("p", fmt.Sprint(k%n), StateMessage{State: st})
		}
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := p.Close(ctx); err != nil {
			b.Fatal(err)
		}
		if err := e.Drain(ctx, p.ClientID()); err != nil {
			b.Fatal(err)
		}
		cancel()
		pubT += time.Since(t0)

		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("plugs-bare").SetKeepAlive(0))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			b.Fatalf("connect: %v", tok.Error())
		}
		payload := []byte(`{"state":"stopped","pid":0,"version":"","revision":"","restarts":0,"since":"2026-01-01T00:00:00Z","run":"test-run"}`)
		for k := range 2 * n {
			c.Publish(StateTopic("bare", "p", fmt.Sprint(k%n)), 1, true, payload)
		}
		t0 = time.Now()
		last := c.Publish(StatusTopic("bare"), 1, true, StatusOffline)
		if !last.WaitTimeout(30*time.Second) || last.Error() != nil {
			b.Fatalf("publish: %v", last.Error())
		}
		c.Disconnect(250)
		if err := e.Drain(context.Background(), "plugs-bare"); err != nil {
			b.Fatal(err)
		}
		bareT += time.Since(t0)
		b.StartTimer()
	}
	b.ReportMetric(float64(pubT.Microseconds())/1e3/float64(b.N), "tail-ms")
	b.ReportMetric(float64(bareT.Microseconds())/1e3/float64(b.N), "bare-tail-ms")
	b.ReportMetric(float64(pubT)/float64(bareT), "x-bare")
}

// awaitSent waits until p has nothing left to send (bounded).
func awaitSent(b *testing.B, p *Publisher) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		idle := p.connected.Load() && !p.republish && len(p.pending) == 0 && p.queue.len() == 0
		p.mu.Unlock()
		if idle {
			time.Sleep(20 * time.Millisecond) // the last publishes' acknowledgements
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Fatal("publisher did not send its queue in 30 s")
}

// BenchmarkStopStates1000Local is the same stop on the embedded broker,
// the daemon's publisher sending over its loopback connection (tcp-tail-ms,
// as before Config.Local) and publishing in the broker's process (Config.Local
// = Embedded.Publish, local-tail-ms, what the daemon does), alternated in
// every iteration: from the last of 2,000 states queued at once until
// Close and Drain return. x-tcp is the ratio of the tails.
func BenchmarkStopStates1000Local(b *testing.B) {
	const n = 1000
	e, err := StartEmbedded("127.0.0.1:0", testAuth(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	url := withUser(e.URL(), DaemonUsername, e.auth.password(DaemonUsername))
	tail := func(local bool) time.Duration {
		cfg := Config{URL: url, Host: "bench", ClientID: "plugs-bench", KeepAlive: -1, RunID: testRunID}
		if local {
			cfg.Local = e.Publish
		}
		p := NewPublisher(cfg)
		if err := p.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		for i := range n {
			p.PublishState("p", fmt.Sprint(i), StateMessage{State: "running", PID: 1000 + i})
		}
		awaitSent(b, p)
		for k := range 2 * n {
			st := "stopping"
			if k >= n {
				st = StateStopped
			}
			p.PublishState("p", fmt.Sprint(k%n), StateMessage{State: st})
		}
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			b.Fatal(err)
		}
		if err := e.Drain(ctx, p.ClientID()); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	var tcpT, localT time.Duration
	for b.Loop() {
		b.StopTimer()
		tcpT += tail(false)
		localT += tail(true)
		b.StartTimer()
	}
	b.ReportMetric(float64(tcpT.Microseconds())/1e3/float64(b.N), "tcp-tail-ms")
	b.ReportMetric(float64(localT.Microseconds())/1e3/float64(b.N), "local-tail-ms")
	b.ReportMetric(float64(tcpT)/float64(localT), "x-tcp")
}
