package mqtt

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"log/slog"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/plugs-dev/plugs/internal/mqtttest"
)

// echoHandler answers with the request as JSON.
func echoHandler(_ context.Context, req ExecRequest) []byte {
	b, _ := json.Marshal(map[string]any{"plug": req.Plug, "instance": req.Instance, "input": string(req.Input),
		"timeout": req.Timeout.String(), "max_output": req.MaxOutput})
	return b
}

func startExec(t *testing.T, brokerURL, user, pw string, h ExecHandler) *ExecServer {
	t.Helper()
	s, err := StartExecServer(ExecConfig{URL: brokerURL, Username: user, Password: pw, Host: "edge-1", Handler: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("exec server not subscribed: %v", err)
	}
	return s
}

// mosquittoRR calls like a user would, with the real client.
func mosquittoRR(t *testing.T, brokerURL, user, pw, topic, resp, msg string, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto_rr")
	if err != nil {
		t.Fatalf("mosquitto_rr not installed (run scripts/test-deps.sh): %v", err)
	}
	u, _ := url.Parse(brokerURL)
	args := []string{"-h", u.Hostname(), "-p", u.Port(), "-t", topic, "-e", resp, "-m", msg, "-W", "20"}
	if user != "" {
		args = append(args, "-u", user, "-P", pw)
	}
	out, err := exec.Command(bin, append(args, extra...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_rr %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestExecOverEmbeddedBrokerWithMosquittoRR(t *testing.T) {
	dir := t.TempDir()
	auth, err := LoadAuth(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := StartEmbedded("127.0.0.1:0", auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	du, dp := auth.Daemon()
	startExec(t, e.URL(), du, dp, echoHandler)

	cu, cp := auth.Caller()
	topic := ExecTopic("edge-1", "notify", "default")
	out := mosquittoRR(t, e.URL(), cu, cp, topic, ExecReplyPrefix("edge-1")+"t1", `{"text":"hi"}`,
		"-D", "publish", "user-property", "timeout", "5s", "-D", "publish", "user-property", "max_output", "100")
	var got map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &got); err != nil {
		t.Fatalf("answer %q: %v", out, err)
	}
	if got["plug"] != "notify" || got["instance"] != "default" || got["input"] != `{"text":"hi"}` || got["timeout"] != "5s" || got["max_output"] != 100.0 {
		t.Fatalf("answer = %v", got)
	}

	// The reader account (subscribers, dashboards) may not call a task.
	ru, rp := auth.Reader()
	bin, _ := exec.LookPath("mosquitto_rr")
	u, _ := url.Parse(e.URL())
	cmd := exec.Command(bin, "-h", u.Hostname(), "-p", u.Port(), "-u", ru, "-P", rp, "-t", topic,
		"-e", ExecReplyPrefix("edge-1")+"t2", "-m", "x", "-W", "2")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("the reader account's call was answered: %s", out)
	}
}

func TestExecOverMosquittoEchoesCorrelationData(t *testing.T) {
	brokerURL, _, _ := mqtttest.Mosquitto(t)
	startExec(t, brokerURL, "", "", echoHandler)

	// mosquitto_rr against the real broker.
	out := mosquittoRR(t, brokerURL, "", "", ExecTopic("edge-1", "pull", "site-a"), "replies/me", "in")
	if !strings.Contains(out, `"instance":"site-a"`) {
		t.Fatalf("answer %q", out)
	}

	// A paho v5 client checks the correlation data comes back, for two calls at once.
	u, _ := url.Parse(brokerURL)
	answers := make(chan *paho.Publish, 4)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cm, err := autopaho.NewConnection(ctx, autopaho.ClientConfig{
		ServerUrls: []*url.URL{u}, KeepAlive: 10, CleanStartOnInitialConnection: true,
		ClientConfig: paho.ClientConfig{ClientID: "test-caller", OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { answers <- pr.Packet; return true, nil }}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-cm.Done() }()
	if err := cm.AwaitConnection(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "replies/go", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := cm.Publish(ctx, &paho.Publish{QoS: 1, Topic: ExecTopic("edge-1", "pull", "site-a"), Payload: []byte(fmt.Sprint(i)),
			Properties: &paho.PublishProperties{ResponseTopic: "replies/go", CorrelationData: []byte(fmt.Sprint("call-", i))}}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]string{}
	for range 2 {
		select {
		case p := <-answers:
			var got map[string]any
			json.Unmarshal(p.Payload, &got)
			seen[string(p.Properties.CorrelationData)] = fmt.Sprint(got["input"])
			if p.Properties.ContentType != "application/json" {
				t.Errorf("content type %q", p.Properties.ContentType)
			}
		case <-ctx.Done():
			t.Fatalf("answers: %v (got %v)", ctx.Err(), seen)
		}
	}
	if seen["call-0"] != "0" || seen["call-1"] != "1" {
		t.Fatalf("correlation: %v", seen)
	}

	// A bad property is answered as an input error.
	if _, err := cm.Publish(ctx, &paho.Publish{QoS: 1, Topic: ExecTopic("edge-1", "pull", "site-a"),
		Properties: &paho.PublishProperties{ResponseTopic: "replies/go", User: paho.UserProperties{{Key: "timeout", Value: "soon"}}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-answers:
		if !strings.Contains(string(p.Payload), `"kind":"input"`) {
			t.Fatalf("bad timeout answered %s", p.Payload)
		}
	case <-ctx.Done():
		t.Fatal("no answer to a bad timeout")
	}
}

func TestUnescapeTopicSegment(t *testing.T) {
	for _, name := range []string{"plain", "a/b", "50%+#", ""} {
		want := name
		if name == "" {
			want = "_"
		}
		if got := unescapeTopicSegment(EscapeTopicSegment(name)); got != want {
			t.Errorf("round trip of %q = %q", name, got)
		}
	}
}

// A broker that refuses the subscription (its ACL) answers SUBACK with a
// failure code: the server must not claim calls are received. (Mosquitto
// 2.0's acl_file grants every subscription and filters at delivery, so a
// mochi broker that denies reads stands in.)
func TestExecServerReportsARefusedSubscription(t *testing.T) {
	srv := mochi.New(&mochi.Options{InlineClient: false, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(&denyReads{}, nil); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(t))
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{Type: listeners.TypeTCP, ID: "t", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	s, err := StartExecServer(ExecConfig{URL: "tcp://" + addr, Host: "edge-1", Handler: echoHandler})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	for range 200 {
		if ok, _, why := s.Subscribed(); ok || strings.Contains(why, "refused") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	ok, filter, why := s.Subscribed()
	if ok || filter != "plugs/edge-1/+/+/exec" || !strings.Contains(why, "refused by the broker (reason code 0x87)") {
		t.Fatalf("Subscribed() = %v, %q, %q; want a refusal", ok, filter, why)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := s.Ready(ctx); err == nil {
		t.Fatal("Ready after a refused subscription")
	}
}

// denyReads admits every client and lets none subscribe.
type denyReads struct{ mochi.HookBase }

func (denyReads) ID() string { return "deny-reads" }
func (denyReads) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}
func (denyReads) OnConnectAuthenticate(*mochi.Client, packets.Packet) bool { return true }
func (denyReads) OnACLCheck(_ *mochi.Client, _ string, write bool) bool    { return write }

func TestExecKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want uint16
	}{{0, 30}, {-1, 0}, {10 * time.Second, 10}, {time.Millisecond, 1}, {100 * time.Hour, 65535}} {
		if got := keepAliveSeconds(tc.in); got != tc.want {
			t.Errorf("keepAliveSeconds(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// After the broker restarts (its subscriptions lost), the server
// reconnects and subscribes again, and says so in between.
func TestExecServerResubscribesAfterABrokerRestart(t *testing.T) {
	brokerURL, stop, restart := mqtttest.Mosquitto(t)
	s := startExec(t, brokerURL, "", "", echoHandler)
	topic := ExecTopic("edge-1", "pull", "default")
	if out := mosquittoRR(t, brokerURL, "", "", topic, "replies/a", "before"); !strings.Contains(out, `"input":"before"`) {
		t.Fatalf("answer %q", out)
	}
	stop()
	waitSubscribed(t, s, false)
	if ok, _, why := s.Subscribed(); ok || why == "" || strings.Contains(why, "not connected yet") {
		t.Fatalf("Subscribed() = %v, %q while the broker is down", ok, why)
	}
	restart()
	waitSubscribed(t, s, true)
	if out := mosquittoRR(t, brokerURL, "", "", topic, "replies/b", "after"); !strings.Contains(out, `"input":"after"`) {
		t.Fatalf("answer after the restart %q", out)
	}
}

func waitSubscribed(t *testing.T, s *ExecServer, want bool) {
	t.Helper()
	for range 400 {
		if ok, _, _ := s.Subscribed(); ok == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	ok, filter, why := s.Subscribed()
	t.Fatalf("Subscribed() = %v, %s, %q; want %v", ok, filter, why, want)
}
