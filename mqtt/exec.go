package mqtt

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

// ExecTopic is the topic a task instance is called on over MQTT 5
// request/response: the request's payload is the run's input, its Response
// Topic property says where the result goes (with its Correlation Data
// echoed), and the user properties "timeout" (a duration) and "max_output"
// (bytes) ask for a run's limits as the HTTP API's query does.
func ExecTopic(host, plug, instance string) string {
	return instanceTopic(host, plug, instance) + "/exec"
}

// ExecFilter is the subscription an ExecServer of host makes: every
// instance's exec topic.
func ExecFilter(host string) string {
	return "plugs/" + EscapeTopicSegment(host) + "/+/+/exec"
}

// ExecReplyPrefix is where, on the embedded broker, callers have their
// answers sent: a Response Topic below plugs/<host>/replies/. The caller
// account may read it; the daemon may write it.
func ExecReplyPrefix(host string) string {
	return "plugs/" + EscapeTopicSegment(host) + "/replies/"
}

// ExecRequest is one call received on an exec topic.
type ExecRequest struct {
	Plug, Instance string
	Input          []byte
	Timeout        time.Duration // 0: the task's own
	MaxOutput      int           // 0: the task's own
}

// ExecHandler runs one call and returns the response payload (JSON: the
// run's result, or an error object). It must return when ctx ends.
type ExecHandler func(ctx context.Context, req ExecRequest) []byte

// DefaultExecInFlight bounds the calls an ExecServer handles at once;
// beyond it a call is answered busy without reaching the handler.
const DefaultExecInFlight = 256

// ExecConfig says how an ExecServer reaches its broker, which must speak
// MQTT 5 (Mosquitto 1.6 and later, the embedded broker).
type ExecConfig struct {
	URL      string // tcp://, ssl://, ws:// … as for Config
	Username string
	Password string
	Host     string
	ClientID string // default "plugs-<host>-exec"
	// TLSConfig is used for ssl://, tls://, mqtts:// and wss:// brokers.
	TLSConfig   *tls.Config
	Handler     ExecHandler
	MaxInFlight int // default DefaultExecInFlight
	// QoS of the subscription and the answers (default 0). The embedded
	// broker needs 0: mochi-mqtt v2.7.9 shares packet ids between the two
	// directions of a connection (see README, known limitations).
	QoS byte
	// KeepAlive as for Config: default DefaultKeepAlive; negative: no pings
	// (the embedded broker, in the same process: an idle daemon stays idle).
	KeepAlive time.Duration
	Logger    *slog.Logger
}

// ExecServer answers task calls over MQTT 5 request/response: it
// subscribes to plugs/<host>/+/+/exec and publishes each result to the
// request's Response Topic with its Correlation Data. A request without a
// Response Topic runs all the same (fire and forget).
type ExecServer struct {
	cfg        ExecConfig
	cm         *autopaho.ConnectionManager
	ctx        context.Context // calls; ends first on Close
	cancel     context.CancelFunc
	connCancel context.CancelFunc // the connection

	filter     string
	subscribed chan struct{} // closed at the first subscription
	subOnce    sync.Once
	// now is whether calls are received at this moment: subscribed on the
	// current connection. subErr is the last failure to subscribe.
	now    atomic.Bool
	errMu  sync.Mutex
	subErr string
	slots  chan struct{}
	mu     sync.Mutex // guards closed and wg.Add against Close
	closed bool
	wg     sync.WaitGroup
}

// StartExecServer connects to the broker in the background (retrying
// while it is unreachable) and serves calls until Close.
func StartExecServer(cfg ExecConfig) (*ExecServer, error) {
	u, err := parseBrokerURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Handler == nil {
		return nil, errors.New("exec server: no handler")
	}
	if cfg.Username == "" && u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
	clean := *u
	clean.User = nil
	if cfg.ClientID == "" {
		cfg.ClientID = "plugs-" + cfg.Host + "-exec"
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultExecInFlight
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &ExecServer{cfg: cfg, subscribed: make(chan struct{}), slots: make(chan struct{}, cfg.MaxInFlight)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	connCtx, connCancel := context.WithCancel(context.Background())
	s.connCancel = connCancel
	filter := ExecFilter(cfg.Host)
	s.filter = filter
	acfg := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{&clean},
		TlsCfg:                        cfg.TLSConfig,
		KeepAlive:                     keepAliveSeconds(cfg.KeepAlive),
		CleanStartOnInitialConnection: true,
		ConnectUsername:               cfg.Username,
		ConnectPassword:               []byte(cfg.Password),
		// autopaho waits ReconnectBackoff(0) before the first attempt too:
		// 0, or calls published in the first 2 s after start were lost.
		ReconnectBackoff: func(attempt int) time.Duration {
			if attempt == 0 {
				return 0
			}
			return 2 * time.Second
		},
		ConnectTimeout: 10 * time.Second,
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			go func() {
				ctx, cancel := context.WithTimeout(connCtx, 10*time.Second)
				defer cancel()
				ack, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: cfg.QoS}}})
				if ack != nil && len(ack.Reasons) > 0 && ack.Reasons[0] >= 0x80 {
					// A broker that refuses (an ACL: Not authorized, 0x87)
					// answers SUBACK with the reason; paho's error does not
					// name it.
					err = fmt.Errorf("refused by the broker (reason code 0x%02x)", ack.Reasons[0])
				}
				if err != nil {
					cfg.Logger.Warn("mqtt exec: subscribe", "filter", filter, "err", err)
					s.setErr(err.Error())
					return
				}
				s.setErr("")
				s.now.Store(true)
				cfg.Logger.Debug("mqtt exec: subscribed", "filter", filter)
				s.subOnce.Do(func() { close(s.subscribed) })
			}()
		},
		OnConnectionDown: func() bool {
			s.now.Store(false)
			s.setErr("the connection to the broker was lost; reconnecting")
			return true
		},
		OnConnectError: func(err error) {
			s.setErr(err.Error())
			cfg.Logger.Debug("mqtt exec: connect", "broker", RedactURL(&clean), "err", err)
		},
		ClientConfig: paho.ClientConfig{
			ClientID: cfg.ClientID,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				s.received(pr.Client, pr.Packet)
				return true, nil
			}},
			OnClientError: func(err error) { cfg.Logger.Debug("mqtt exec: client", "err", err) },
		},
	}
	cm, err := autopaho.NewConnection(connCtx, acfg)
	if err != nil {
		s.cancel()
		connCancel()
		return nil, fmt.Errorf("mqtt exec: %w", err)
	}
	s.cm = cm
	return s, nil
}

// keepAliveSeconds is an MQTT keepalive: 0 for none.
func keepAliveSeconds(d time.Duration) uint16 {
	switch {
	case d < 0:
		return 0
	case d == 0:
		d = DefaultKeepAlive
	}
	return uint16(min(max(d/time.Second, 1), 65535))
}

// Ready returns once the server has subscribed, or ctx ends.
func (s *ExecServer) Ready(ctx context.Context) error {
	select {
	case <-s.subscribed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribed reports whether calls are received now (subscribed on the
// current connection), the filter, and why not.
func (s *ExecServer) Subscribed() (ok bool, filter, why string) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	ok = s.now.Load()
	if ok {
		return true, s.filter, ""
	}
	why = s.subErr
	if why == "" {
		why = "not connected yet"
	}
	return false, s.filter, why
}

func (s *ExecServer) setErr(msg string) {
	s.errMu.Lock()
	s.subErr = msg
	s.errMu.Unlock()
}

// Close stops taking calls, ends the calls in flight (their handlers'
// contexts end) and disconnects.
func (s *ExecServer) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = s.cm.Disconnect(dctx)
	s.connCancel()
	select {
	case <-s.cm.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// received handles one PUBLISH on an exec topic; it must not block paho's
// reader, so the call runs in its own goroutine.
func (s *ExecServer) received(c *paho.Client, p *paho.Publish) {
	s.cfg.Logger.Debug("mqtt exec: call", "topic", p.Topic)
	levels := strings.Split(p.Topic, "/")
	if len(levels) != 5 || levels[4] != "exec" {
		return
	}
	req := ExecRequest{Plug: unescapeTopicSegment(levels[2]), Instance: unescapeTopicSegment(levels[3]), Input: p.Payload}
	var respTopic string
	var corr []byte
	var badProp string
	if p.Properties != nil {
		respTopic, corr = p.Properties.ResponseTopic, p.Properties.CorrelationData
		if v := p.Properties.User.Get("timeout"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				badProp = fmt.Sprintf("invalid timeout %q: give a positive duration such as 30s", v)
			}
			req.Timeout = d
		}
		if v := p.Properties.User.Get("max_output"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				badProp = fmt.Sprintf("invalid max_output %q: give a positive number of bytes", v)
			}
			req.MaxOutput = n
		}
	}
	reply := func(payload []byte) {
		if respTopic == "" {
			return
		}
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		defer cancel()
		_, err := c.Publish(ctx, &paho.Publish{
			QoS: s.cfg.QoS, Topic: respTopic, Payload: payload,
			Properties: &paho.PublishProperties{CorrelationData: corr, ContentType: "application/json"},
		})
		if err != nil {
			s.cfg.Logger.Warn("mqtt exec: publish the answer", "topic", respTopic, "err", err)
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	if badProp != "" {
		go func() { defer s.wg.Done(); reply(errorPayload("input", badProp, 0)) }()
		return
	}
	select {
	case s.slots <- struct{}{}:
	default:
		go func() { defer s.wg.Done(); reply(errorPayload("busy", "too many task calls in flight over MQTT", 1)) }()
		return
	}
	go func() {
		defer s.wg.Done()
		defer func() { <-s.slots }()
		reply(s.cfg.Handler(s.ctx, req))
	}()
}

// errorPayload is an answer that is no run: the task API's error object.
func errorPayload(kind, msg string, retryAfter int) []byte {
	b, _ := json.Marshal(struct {
		Kind       string `json:"kind"`
		Error      string `json:"error"`
		RetryAfter int    `json:"retry_after,omitempty"`
	}{kind, msg, retryAfter})
	return b
}

// CallerUsername is the embedded broker's account for task callers
// (mosquitto_rr, a main server on the host): it may publish to exec topics
// and read answers below ExecReplyPrefix. Its password is in
// CallerPasswordPath(dir).
const CallerUsername = "caller"

const callerPasswordFile = "caller.password"

// Caller returns the task callers' account.
func (a *Auth) Caller() (username, password string) {
	return CallerUsername, a.password(CallerUsername)
}

// CallerPasswordPath is the file LoadAuth(dir) keeps the caller account's
// password in (mode 0600).
func CallerPasswordPath(dir string) string { return filepath.Join(dir, callerPasswordFile) }

// unescapeTopicSegment undoes EscapeTopicSegment.
func unescapeTopicSegment(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}
