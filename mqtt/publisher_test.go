package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/internal/syncbuf"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/plugs-dev/plugs/internal/mqtttest"
)

// The test binary doubles as a daemon that publishes state and is then
// SIGKILLed by its parent test (see TestKilledPublisherLeavesOffline).
const childURLEnv = "PLUGS_MQTT_TEST_CHILD_URL"

func TestMain(m *testing.M) {
	if url := os.Getenv(childURLEnv); url != "" {
		runChild(url)
		return
	}
	goleak.VerifyTestMain(m)
}

func runChild(url string) {
	p := NewPublisher(Config{URL: url, Host: "child", RetryInterval: 50 * time.Millisecond, RunID: testRunID})
	if err := p.Start(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	p.PublishState("sensor", "default", StateMessage{State: "running", PID: os.Getpid()})
	select {} // until killed
}

// testRunID is the RunID of the tests' publishers.
const testRunID = "test-run"

// fastConfig is a Config for tests: short retry delays so that a publisher
// reconnects promptly and its goroutines end promptly after Close.
func fastConfig(url, host string) Config {
	return Config{
		URL:            url,
		Host:           host,
		RetryInterval:  50 * time.Millisecond,
		PublishTimeout: 5 * time.Second,
		RunID:          testRunID,
	}
}

func closePublisher(t *testing.T, p *Publisher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func isPayload(topic, payload string) func(mqtttest.Message) bool {
	return func(m mqtttest.Message) bool { return m.Topic == topic && string(m.Payload) == payload }
}

func isState(topic string, want StateMessage) func(mqtttest.Message) bool {
	return func(m mqtttest.Message) bool {
		var got StateMessage
		return m.Topic == topic && json.Unmarshal(m.Payload, &got) == nil && cmp.Equal(got, want)
	}
}

// retained subscribes a fresh client to filter and returns every retained
// message it is given, by topic. A sentinel published on a topic the client
// subscribes to next marks the end (see mqtttest.Subscribe); it must not
// match filter.
func retained(t *testing.T, url, filter, sentinelTopic string) map[string]string {
	t.Helper()
	ch := mqtttest.Subscribe(t, url, filter, sentinelTopic)
	mqtttest.Publish(t, url, sentinelTopic, []byte("end"), false)
	got := map[string]string{}
	mqtttest.Await(t, ch, "sentinel", func(m mqtttest.Message) bool {
		if m.Topic == sentinelTopic {
			return true
		}
		if m.Retained && !strings.HasSuffix(m.Topic, "/run") { // the run topic has its own test
			got[m.Topic] = string(m.Payload)
		}
		return false
	})
	return got
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// brokers runs a test against a real Mosquitto and the embedded broker.
func brokers(t *testing.T, test func(t *testing.T, url string)) {
	t.Run("mosquitto", func(t *testing.T) {
		url, _, _ := mqtttest.Mosquitto(t)
		test(t, url)
	})
	t.Run("embedded", func(t *testing.T) {
		a := testAuth(t)
		e, err := StartEmbedded("127.0.0.1:0", a, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		user, pw := a.Daemon()
		test(t, withUser(e.URL(), user, pw))
	})
}

func TestStateLifecycle(t *testing.T) {
	brokers(t, func(t *testing.T, url string) {
		sub := mqtttest.Subscribe(t, url, "plugs/edge-01/#")
		p := NewPublisher(fastConfig(url, "edge-01"))
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		status := StatusTopic("edge-01")
		mqtttest.Await(t, sub, "online", isPayload(status, StatusOnline))

		since := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
		running := StateMessage{State: "running", PID: 42, Version: "1.2.0", Revision: "abc", Since: since, Run: testRunID}
		backoff := StateMessage{State: "backoff", Version: "1.2.0", Revision: "abc", Restarts: 1, Since: since.Add(time.Minute), Run: testRunID}
		topic := StateTopic("edge-01", "heart-rate", "patient-17")
		other := StateTopic("edge-01", "heart-rate", "patient-22")

		p.PublishState("heart-rate", "patient-17", running)
		m := mqtttest.Await(t, sub, "running state", isState(topic, running))
		wantJSON := `{"state":"running","pid":42,"version":"1.2.0","revision":"abc","restarts":0,"since":"2025-03-01T12:00:00Z","run":"test-run"}`
		if diff := cmp.Diff(wantJSON, string(m.Payload)); diff != "" {
			t.Errorf("state payload (-want +got):\n%s", diff)
		}
		p.PublishState("heart-rate", "patient-17", backoff)
		mqtttest.Await(t, sub, "backoff state", isState(topic, backoff))
		p.PublishState("heart-rate", "patient-22", running)
		mqtttest.Await(t, sub, "second instance", isState(other, running))

		want := map[string]string{status: StatusOnline, topic: mustJSON(t, backoff), other: mustJSON(t, running)}
		if diff := cmp.Diff(want, retained(t, url, "plugs/edge-01/#", "plugs/sentinel/edge-01/1")); diff != "" {
			t.Errorf("retained before Forget (-want +got):\n%s", diff)
		}

		p.Forget("heart-rate", "patient-22")
		mqtttest.Await(t, sub, "cleared state", isPayload(other, ""))
		delete(want, other)
		if diff := cmp.Diff(want, retained(t, url, "plugs/edge-01/#", "plugs/sentinel/edge-01/2")); diff != "" {
			t.Errorf("retained after Forget (-want +got):\n%s", diff)
		}

		closePublisher(t, p)
		mqtttest.Await(t, sub, "offline", isPayload(status, StatusOffline))
		if p.Connected() {
			t.Error("Connected() after Close")
		}
		if p.Dropped() != 0 {
			t.Errorf("Dropped() = %d, want 0", p.Dropped())
		}
	})
}

func TestKilledPublisherLeavesOffline(t *testing.T) {
	brokers(t, func(t *testing.T, url string) {
		sub := mqtttest.Subscribe(t, url, "plugs/child/#")
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childURLEnv+"="+url)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killed := false
		t.Cleanup(func() {
			if !killed {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
		mqtttest.Await(t, sub, "online", isPayload(StatusTopic("child"), StatusOnline))
		mqtttest.Await(t, sub, "child state", isState(StateTopic("child", "sensor", "default"),
			StateMessage{State: "running", PID: cmd.Process.Pid, Run: testRunID}))

		if err := cmd.Process.Kill(); err != nil { // SIGKILL: no chance to say goodbye
			t.Fatal(err)
		}
		_ = cmd.Wait()
		killed = true
		mqtttest.Await(t, sub, "offline (last will)", func(m mqtttest.Message) bool {
			return m.Topic == StatusTopic("child") && string(m.Payload) == StatusOffline
		})
		got := retained(t, url, "plugs/child/#", "plugs/sentinel/child")
		if got[StatusTopic("child")] != StatusOffline {
			t.Errorf("retained status after kill = %q, want offline", got[StatusTopic("child")])
		}
	})
}

// TestBrokerRestartRepublishes stops and restarts Mosquitto (which keeps no
// retained messages across restarts): the publisher reconnects and
// republishes its status and every state. The broker password planted in
// the URL and the config never reaches the log.
func TestBrokerRestartRepublishes(t *testing.T) {
	const secret = "planted-Secret-7f3a"
	url, stop, restart := mqtttest.Mosquitto(t)
	var logs syncbuf.Buffer
	changes := make(chan bool, 16)
	cfg := fastConfig(strings.Replace(url, "tcp://", "tcp://plugs:"+secret+"@", 1), "edge-02")
	cfg.Password = secret
	cfg.Username = "plugs"
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.OnConnectionChange = func(up bool) { changes <- up }
	p := NewPublisher(cfg)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	awaitChange := func(want bool) {
		t.Helper()
		select {
		case got := <-changes:
			if got != want {
				t.Fatalf("connection change = %v, want %v", got, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no connection change to %v", want)
		}
	}
	awaitChange(true)
	state := StateMessage{State: "running", PID: 7, Version: "2.0.0", Revision: "def", Since: time.Unix(1700000000, 0), Run: testRunID}
	topic := StateTopic("edge-02", "bridge", "default")
	sub := mqtttest.Subscribe(t, url, topic)
	p.PublishState("bridge", "default", state)
	mqtttest.Await(t, sub, "state before restart", isState(topic, state))

	stop()
	awaitChange(false)
	if p.Connected() {
		t.Error("Connected() with the broker stopped")
	}
	// Published while the broker is down: waits in the queue.
	stateDown := state
	stateDown.Restarts = 1
	p.PublishState("bridge", "default", stateDown)
	outcome := ReconcileMessage{Result: ReconcileSuccess, Revision: "abc123", At: time.Unix(1700000001, 0), Run: testRunID}
	p.PublishReconcile(outcome)
	restart()
	awaitChange(true)

	want := map[string]string{StatusTopic("edge-02"): StatusOnline, topic: mustJSON(t, stateDown), ReconcileTopic("edge-02"): mustJSON(t, outcome)}
	fresh := mqtttest.Subscribe(t, url, "plugs/edge-02/#")
	got := map[string]string{}
	mqtttest.Await(t, fresh, "republished state", func(m mqtttest.Message) bool {
		if m.Topic == RunTopic("edge-02") {
			return false
		}
		got[m.Topic] = string(m.Payload)
		return cmp.Equal(got, want)
	})
	closePublisher(t, p)
	awaitChange(false)

	out := logs.String()
	if !strings.Contains(out, "mqtt broker connected") || !strings.Contains(out, "connection lost") {
		t.Errorf("expected connect and loss in the log, got:\n%s", out)
	}
	if strings.Contains(out, secret) {
		t.Errorf("the broker password appears in the log:\n%s", out)
	}
	bad := NewPublisher(Config{URL: "http://plugs:" + secret + "@example.org", Host: "x"})
	if err := bad.Start(context.Background()); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("Start with a bad scheme: err = %v; want an error without the password", err)
	}
	if err := bad.Close(context.Background()); err != nil {
		t.Errorf("Close of an unstarted publisher: %v", err)
	}
}

// TestPublishStateNeverBlocksWhileBrokerDown: with nothing listening, 10,000
// PublishState calls over 100 instances all return, the queue keeps the
// newest QueueSize messages and counts the rest as dropped (each call is an
// instance whose waiting message was dropped: none is replaced in place).
func TestPublishStateNeverBlocksWhileBrokerDown(t *testing.T) {
	url := fmt.Sprintf("tcp://127.0.0.1:%d", mqtttest.FreePort(t))
	cfg := fastConfig(url, "edge-03")
	cfg.QueueSize = 64
	p := NewPublisher(cfg)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	for i := range n {
		p.PublishState("p", fmt.Sprint(i%100), StateMessage{State: "running", PID: i})
	}
	if p.Connected() {
		t.Error("Connected() with no broker")
	}
	if got, want := p.Dropped(), uint64(n-cfg.QueueSize); got != want {
		t.Errorf("Dropped() = %d, want %d", got, want)
	}
	p.mu.Lock()
	queued := p.queue.len()
	last := p.queue.buf[(p.queue.first+uint64(queued)-1)%uint64(len(p.queue.buf))]
	p.mu.Unlock()
	if queued != cfg.QueueSize || !strings.Contains(string(last.payload), fmt.Sprintf(`"pid":%d`, n-1)) {
		t.Errorf("queue holds %d messages, newest %s; want %d ending with pid %d", queued, last.payload, cfg.QueueSize, n-1)
	}
	closePublisher(t, p)
}

func TestStartRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "example.org:1883", "http://example.org", "tcp://", "tcp://u:pw%zz@host"} {
		p := NewPublisher(Config{URL: u, Host: "h"})
		err := p.Start(context.Background())
		if err == nil {
			t.Errorf("Start(%q) = nil, want an error", u)
			closePublisher(t, p)
			continue
		}
		if strings.Contains(err.Error(), "pw") {
			t.Errorf("Start(%q) error reveals the password: %v", u, err)
		}
	}
}

func TestStateMessageJSONRoundTrip(t *testing.T) {
	for _, m := range []StateMessage{
		{State: "running", PID: 1, Version: "1.0.0", Revision: "r", Restarts: 3, Since: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		{State: "stopped"},
	} {
		var got StateMessage
		if err := json.Unmarshal([]byte(mustJSON(t, m)), &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(m, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
	if got := mustJSON(t, StateMessage{State: "stopped"}); !strings.Contains(got, `"since":""`) {
		t.Errorf("zero Since encoded as %s", got)
	}
}

// BenchmarkPublishStateBrokerDown measures the publish path when the broker
// is away: encoding, recording the state, queueing and dropping.
func BenchmarkPublishStateBrokerDown(b *testing.B) {
	cfg := fastConfig(fmt.Sprintf("tcp://127.0.0.1:%d", mqtttest.FreePort(b)), "bench")
	cfg.QueueSize = 256
	p := NewPublisher(cfg)
	if err := p.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer p.Close(context.Background())
	s := StateMessage{State: "running", PID: 1, Version: "1.0.0", Revision: "abc", Since: time.Now()}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.PID = i
		p.PublishState("plug", "default", s)
		i++
	}
	b.ReportMetric(float64(p.Dropped()), "dropped")
}

// TestReconcileOutcome: the reconcile topic is retained, replaced by the
// next outcome, and republished to the broker after a reconnect.
func TestReconcileOutcome(t *testing.T) {
	brokers(t, func(t *testing.T, url string) {
		topic := ReconcileTopic("edge-04")
		sub := mqtttest.Subscribe(t, url, topic)
		p := NewPublisher(fastConfig(url, "edge-04"))
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		at := time.Date(2025, 3, 1, 12, 0, 0, 250e6, time.UTC)
		failed := ReconcileMessage{Result: ReconcileError, Error: "plugs.hcl:3,1-5: Unsupported block type", Revision: "0123abcd", At: at, Run: testRunID}
		p.PublishReconcile(failed)
		m := mqtttest.Await(t, sub, "failed reconcile", func(m mqtttest.Message) bool { return m.Topic == topic })
		wantJSON := `{"result":"error","error":"plugs.hcl:3,1-5: Unsupported block type","revision":"0123abcd","at":"2025-03-01T12:00:00.250Z","run":"test-run"}`
		if diff := cmp.Diff(wantJSON, string(m.Payload)); diff != "" {
			t.Errorf("reconcile payload (-want +got):\n%s", diff)
		}
		ok := ReconcileMessage{Result: ReconcileSuccess, Revision: "4567ef01", At: at.Add(time.Second), Run: testRunID}
		p.PublishReconcile(ok)
		mqtttest.Await(t, sub, "successful reconcile", isPayload(topic, mustJSON(t, ok)))

		want := map[string]string{StatusTopic("edge-04"): StatusOnline, topic: mustJSON(t, ok)}
		if diff := cmp.Diff(want, retained(t, url, "plugs/edge-04/#", "plugs/sentinel/edge-04")); diff != "" {
			t.Errorf("retained (-want +got):\n%s", diff)
		}
		closePublisher(t, p)
	})
}

func TestReconcileMessageJSONRoundTrip(t *testing.T) {
	for _, m := range []ReconcileMessage{
		{Result: ReconcileSuccess, Revision: "abc", At: time.Date(2024, 1, 2, 3, 4, 5, 6e6, time.UTC)},
		{Result: ReconcileError, Error: "bad", Revision: "def"},
	} {
		var got ReconcileMessage
		if err := json.Unmarshal([]byte(mustJSON(t, m)), &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(m, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}
