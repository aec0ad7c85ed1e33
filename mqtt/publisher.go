package mqtt

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/plugs-dev/plugs/internal/brokerurl"
	"github.com/plugs-dev/plugs/internal/redact"
)

// Defaults applied by NewPublisher to the zero fields of Config.
const (
	DefaultQueueSize      = 1024
	DefaultPublishTimeout = 10 * time.Second
	DefaultRetryInterval  = 2 * time.Second
	DefaultKeepAlive      = 30 * time.Second
)

// daemonClientIDPrefix starts the daemon's default client id; the embedded
// broker keeps such ids for the daemon's account.
const daemonClientIDPrefix = "plugs-"

// StateStopped is the state Close publishes for every instance.
const StateStopped = "stopped"

// The payloads of the status topic.
const (
	StatusOnline  = "online"
	StatusOffline = "offline"
)

// Config says how a Publisher reaches its broker.
type Config struct {
	// URL of the broker: tcp://, ssl://, ws:// (also mqtt://, mqtts://,
	// tls://, wss://). A user:password in the URL is used when Username is
	// empty, and is never logged.
	URL      string
	Username string
	Password string
	// Host names this machine in topics; default: os.Hostname().
	Host string
	// ClientID defaults to "plugs-<host>".
	ClientID string
	// QueueSize bounds the messages waiting for the broker; when full, the
	// oldest is dropped and counted. Default DefaultQueueSize.
	QueueSize int
	// TLSConfig is used for ssl://, tls://, mqtts:// and wss:// brokers; nil
	// means the system roots.
	TLSConfig *tls.Config
	// PublishTimeout bounds the wait for one publish's acknowledgement.
	PublishTimeout time.Duration
	// RetryInterval is the delay between connection attempts while the
	// broker is unreachable.
	RetryInterval time.Duration
	// KeepAlive is the MQTT keepalive: how long the connection may be quiet
	// before the broker and the publisher each take it for dead. Default
	// DefaultKeepAlive; negative: none, for the embedded broker, whose
	// loopback connection lives in the same process (no pings, so an idle
	// daemon does not wake up every 5 s).
	KeepAlive time.Duration
	// RunID names this run of the daemon in every state message and on the
	// run topic, so that a consumer can tell a state left by an earlier run
	// (a crashed daemon) from a current one. Default: random.
	RunID string
	// OnConnectionChange, if set, is called with the new state each time the
	// connection comes up or goes down (e.g. to set plugs_broker_connected).
	// It must not block.
	OnConnectionChange func(connected bool)
	// Local, when set, publishes a retained message in the broker's own
	// process (Embedded.Publish) instead of over the connection: every
	// status and state goes through it, in the queue's order, once the
	// connection (still made, for the data subscriptions and the will) is
	// up. It must return once the message is retained and handed to the
	// subscribers.
	Local  func(topic string, payload []byte) error
	Logger *slog.Logger
}

// StateMessage is the retained JSON payload of an instance's state topic.
type StateMessage struct {
	State    string
	PID      int
	Version  string
	Revision string
	Restarts int
	Since    time.Time
	// Run is the RunID of the daemon that published it (PublishState sets
	// it): a state whose run is not the one on the host's run topic, or
	// any state while the host's status is offline, is stale.
	Run string
	// LastExit is "oom-killed" when the last process was killed at its
	// cgroup memory limit, else "" (and left out of the payload).
	LastExit string

	// Health of a running instance with checks: "pending", "healthy" or
	// "unhealthy" ("" otherwise); Ready, whether it has been ready since
	// its start; HealthOutput, the last failing check's output.
	Health       string
	Ready        bool
	HealthOutput string
}

// MarshalJSON encodes m with lower-case keys and Since in RFC 3339, UTC, to
// the second ("" when zero).
func (m StateMessage) MarshalJSON() ([]byte, error) {
	since := ""
	if !m.Since.IsZero() {
		since = m.Since.UTC().Format(time.RFC3339)
	}
	return json.Marshal(struct {
		State    string `json:"state"`
		PID      int    `json:"pid"`
		Version  string `json:"version"`
		Revision string `json:"revision"`
		Restarts int    `json:"restarts"`
		Since    string `json:"since"`
		Run      string `json:"run"`
		LastExit string `json:"last_exit,omitempty"`
		Health   string `json:"health,omitempty"`
		Ready    bool   `json:"ready,omitempty"`
		Output   string `json:"health_output,omitempty"`
	}{m.State, m.PID, m.Version, m.Revision, m.Restarts, since, m.Run, m.LastExit, m.Health, m.Ready, m.HealthOutput})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (m *StateMessage) UnmarshalJSON(b []byte) error {
	var v struct {
		State    string `json:"state"`
		PID      int    `json:"pid"`
		Version  string `json:"version"`
		Revision string `json:"revision"`
		Restarts int    `json:"restarts"`
		Since    string `json:"since"`
		Run      string `json:"run"`
		LastExit string `json:"last_exit"`
		Health   string `json:"health"`
		Ready    bool   `json:"ready"`
		Output   string `json:"health_output"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = StateMessage{State: v.State, PID: v.PID, Version: v.Version, Revision: v.Revision, Restarts: v.Restarts, Run: v.Run, LastExit: v.LastExit,
		Health: v.Health, Ready: v.Ready, HealthOutput: v.Output}
	if v.Since != "" {
		t, err := time.Parse(time.RFC3339, v.Since)
		if err != nil {
			return fmt.Errorf("since: %w", err)
		}
		m.Since = t
	}
	return nil
}

// The results of a ReconcileMessage.
const (
	ReconcileSuccess = "success"
	ReconcileError   = "error"
)

// ReconcileMessage is the retained JSON payload of the host's reconcile
// topic: the outcome of the daemon's last reconcile.
type ReconcileMessage struct {
	Result   string    // ReconcileSuccess or ReconcileError
	Error    string    // why it failed; "" on success. Never holds a secret: the caller redacts it.
	Revision string    // the configuration revision it reconciled to (a commit, or a content id)
	At       time.Time // when it finished
	Run      string    // the daemon's RunID (PublishReconcile sets it)
	// Rollouts are the plugs whose health-gated rollout ended badly or is
	// under way, with why (issue 13); none when all are healthy.
	Rollouts []RolloutOutcome
}

// RolloutOutcome is one plug's rollout in a ReconcileMessage.
type RolloutOutcome struct {
	Plug     string `json:"plug"`
	Result   string `json:"result"`   // rolling-out, failed, reverted or pinned
	Revision string `json:"revision"` // the plug revision plugs.hcl asks for
	// RevertedTo is the revision that runs instead, after a revert or a
	// rollback; Reason why.
	RevertedTo string `json:"reverted_to,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

type reconcileJSON struct {
	Result   string           `json:"result"`
	Error    string           `json:"error"`
	Revision string           `json:"revision"`
	At       string           `json:"at"`
	Run      string           `json:"run"`
	Rollouts []RolloutOutcome `json:"rollouts,omitempty"`
}

// MarshalJSON encodes m as {result, error, revision, at}, At in RFC 3339,
// UTC, to the millisecond ("" when zero).
func (m ReconcileMessage) MarshalJSON() ([]byte, error) {
	at := ""
	if !m.At.IsZero() {
		at = m.At.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	return json.Marshal(reconcileJSON{m.Result, m.Error, m.Revision, at, m.Run, m.Rollouts})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (m *ReconcileMessage) UnmarshalJSON(b []byte) error {
	var v reconcileJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = ReconcileMessage{Result: v.Result, Error: v.Error, Revision: v.Revision, Run: v.Run, Rollouts: v.Rollouts}
	if v.At != "" {
		t, err := time.Parse(time.RFC3339, v.At)
		if err != nil {
			return fmt.Errorf("at: %w", err)
		}
		m.At = t
	}
	return nil
}

// RunMessage is the retained JSON payload of the host's run topic, sent
// before "online" after every connect: which run of the daemon is the
// current one.
type RunMessage struct {
	Run     string    `json:"run"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

// Publisher keeps the host's status and every instance's state on the
// broker. Its methods never block on the broker: messages wait in a bounded
// queue drained by one goroutine, and the latest state of every instance is
// kept in memory and republished after each (re)connect.
//
// All methods are safe for concurrent use.
type Publisher struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{} // buffered 1: the queue or the connection changed

	mu        sync.Mutex
	queue     *ring
	states    map[string][]byte       // retained topic (state, reconcile) → latest payload
	instances map[string]StateMessage // state topic → latest state, for the stopped states of Close
	republish bool                    // a connection came up: send status and every state first
	pending   []message               // the republish batch being sent
	started   bool
	closed    bool
	client    paho.Client
	broker    string // the URL without user information
	cancel    context.CancelFunc
	done      chan struct{} // closed when the drain goroutine returns

	connMu    sync.Mutex // orders connection-state changes and their callbacks
	connected atomic.Bool
	dropped   atomic.Uint64

	lost     chan struct{} // buffered 1: the connection went down, connect again
	connDone chan struct{} // closed when the connect loop returns
	started0 time.Time     // when NewPublisher ran, for the run topic

	emu      sync.Mutex // guards the connect errors below
	lastErr  string     // the last connect failure; "" once connected
	lastErrT time.Time
	logged   map[string]time.Time // connect failures by text → when last logged

	watch dataWatch      // datawatch.go: the data-topic subscription for health checks
	subs  sync.WaitGroup // subscribeData calls in flight (goSubscribeData), waited for by Close
}

// connectErrorLogEvery is how often the same connect failure is logged
// again while it lasts; a new failure is logged at once.
const connectErrorLogEvery = 10 * time.Minute

// NewPublisher returns a Publisher for cfg; it does nothing until Start.
// PublishState may be called before Start: the messages wait in the queue.
func NewPublisher(cfg Config) *Publisher {
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
		if cfg.Host == "" {
			cfg.Host = "localhost"
		}
	}
	if cfg.ClientID == "" {
		cfg.ClientID = daemonClientIDPrefix + cfg.Host
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RunID == "" {
		cfg.RunID = newRunID()
	}
	return &Publisher{
		cfg:       cfg,
		log:       cfg.Logger,
		wake:      make(chan struct{}, 1),
		queue:     newRing(cfg.QueueSize),
		states:    make(map[string][]byte),
		instances: make(map[string]StateMessage),
		done:      make(chan struct{}),
		lost:      make(chan struct{}, 1),
		connDone:  make(chan struct{}),
		started0:  time.Now(),
		logged:    make(map[string]time.Time),
	}
}

// newRunID is 16 random hex digits.
func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RunID names this run of the daemon on the run topic and in every state.
func (p *Publisher) RunID() string { return p.cfg.RunID }

// LastError is the last failure to connect to the broker and when it
// happened; "" once a connection is up.
func (p *Publisher) LastError() (string, time.Time) {
	p.emu.Lock()
	defer p.emu.Unlock()
	return p.lastErr, p.lastErrT
}

// Host is the host name used in topics.
func (p *Publisher) Host() string { return p.cfg.Host }

// ClientID is the client id the publisher connects with.
func (p *Publisher) ClientID() string { return p.cfg.ClientID }

// Start begins connecting to the broker and returns at once: a broker that
// is down is retried forever in the background. It fails only on a bad
// configuration. ctx bounds the publishing goroutine; Close ends it cleanly.
func (p *Publisher) Start(ctx context.Context) error {
	u, err := parseBrokerURL(p.cfg.URL)
	if err != nil {
		return err
	}
	username, password := p.cfg.Username, p.cfg.Password
	if username == "" && u.User != nil {
		username = u.User.Username()
		password, _ = u.User.Password()
	}
	broker := RedactURL(u)

	opts := paho.NewClientOptions().
		AddBroker(broker).
		SetClientID(p.cfg.ClientID).
		SetUsername(username).
		SetPassword(password).
		SetCleanSession(true).
		SetOrderMatters(false). // handlers run in their own goroutines: none can stall paho
		// Connecting and reconnecting are ours (see connectLoop): paho's
		// own reconnect resends its stored in-flight publish, racing our
		// newer states, and its connect retry hides why a connect failed.
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(p.cfg.PublishTimeout).
		SetWriteTimeout(p.cfg.PublishTimeout).
		SetKeepAlive(max(p.cfg.KeepAlive, 0)). // 0: no pings
		SetWill(StatusTopic(p.cfg.Host), StatusOffline, 1, true).
		SetOnConnectHandler(func(c paho.Client) { p.connectionChanged(true); p.goSubscribeData(c) }).
		SetConnectionLostHandler(p.connectionLost)
	if p.cfg.TLSConfig != nil {
		opts.SetTLSConfig(p.cfg.TLSConfig)
	}

	p.mu.Lock()
	if p.started || p.closed {
		p.mu.Unlock()
		return errors.New("mqtt publisher already started or closed")
	}
	p.started = true
	p.client = paho.NewClient(opts)
	p.broker = broker
	ctx, p.cancel = context.WithCancel(ctx)
	p.mu.Unlock()

	p.log.Info("connecting to mqtt broker", "broker", broker, "client_id", p.cfg.ClientID)
	go p.connectLoop(ctx)
	go p.run(ctx)
	return nil
}

// connectLoop connects, and connects again each time the connection is
// lost (with a fresh clean session, so that paho forgets what was in
// flight: the drain's token completes with an error), every RetryInterval
// until it succeeds, until ctx ends or the publisher closes. Each distinct
// failure is logged when it first happens and then at most every
// connectErrorLogEvery, and LastError shows the latest.
func (p *Publisher) connectLoop(ctx context.Context) {
	defer close(p.connDone)
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
		}
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return
		}
		t := p.client.Connect()
		select {
		case <-t.Done():
		case <-ctx.Done():
			return
		}
		if err := t.Error(); err != nil {
			p.connectFailed(err)
			retry.Reset(p.cfg.RetryInterval)
			continue
		}
		p.emu.Lock()
		p.lastErr, p.lastErrT = "", time.Time{}
		clear(p.logged)
		p.emu.Unlock()
		select { // connected: wait for it to go down
		case <-ctx.Done():
			return
		case <-p.lost:
			retry.Reset(0)
		}
	}
}

// connectFailed records a failed connect and logs it unless the same
// failure was logged recently.
func (p *Publisher) connectFailed(err error) {
	msg := err.Error()
	if p.cfg.Password != "" {
		msg = strings.ReplaceAll(msg, p.cfg.Password, "(sensitive)")
	}
	now := time.Now()
	p.emu.Lock()
	p.lastErr, p.lastErrT = msg, now
	last, seen := p.logged[msg]
	log := !seen || now.Sub(last) >= connectErrorLogEvery
	if log {
		p.logged[msg] = now
	}
	p.emu.Unlock()
	if log {
		p.log.Error("mqtt broker connect failed; retrying", "broker", p.broker, "err", msg, "retry_every", p.cfg.RetryInterval)
	}
}

// connectionLost wakes connectLoop to connect again.
func (p *Publisher) connectionLost(_ paho.Client, err error) {
	p.log.Warn("mqtt broker connection lost", "broker", p.broker, "err", err)
	p.connectionChanged(false)
	select {
	case p.lost <- struct{}{}:
	default:
	}
}

// connectionChanged records the connection state paho reports. Handlers run
// in their own goroutines and may run out of order, so the state is read
// back from the client under connMu rather than trusted from the event.
func (p *Publisher) connectionChanged(event bool) {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	now := p.client.IsConnectionOpen()
	if event && now {
		p.mu.Lock()
		p.republish = true
		p.mu.Unlock()
	}
	defer p.signal()
	if p.connected.Swap(now) == now {
		return
	}
	if now {
		p.log.Info("mqtt broker connected", "broker", p.broker)
	}
	if p.cfg.OnConnectionChange != nil {
		p.cfg.OnConnectionChange(now)
	}
}

// PublishState records s as the latest state of plug/instance and queues it
// as a retained QoS 1 message on its state topic. It never blocks.
func (p *Publisher) PublishState(plug, instance string, s StateMessage) {
	s.Run = p.cfg.RunID
	topic := StateTopic(p.cfg.Host, plug, instance)
	p.mu.Lock()
	p.instances[topic] = s
	p.mu.Unlock()
	p.publishRetained(topic, s)
}

// PublishReconcile records m as the outcome of the last reconcile and
// queues it as a retained QoS 1 message on the host's reconcile topic,
// republished after every reconnect like instance states. It never blocks.
func (p *Publisher) PublishReconcile(m ReconcileMessage) {
	m.Run = p.cfg.RunID
	p.publishRetained(ReconcileTopic(p.cfg.Host), m)
}

// publishRetained keeps v's JSON as the latest payload of topic and queues it.
func (p *Publisher) publishRetained(topic string, v any) {
	payload, err := json.Marshal(v)
	if err != nil { // cannot happen: only strings, ints and times
		p.log.Error("encode mqtt message", "topic", topic, "err", err)
		return
	}
	p.mu.Lock()
	p.states[topic] = payload
	p.enqueueLocked(message{topic: topic, payload: payload})
	p.mu.Unlock()
	p.signal()
}

// Forget drops the state of plug/instance and clears its retained message
// on the broker (an empty retained publish). It never blocks.
func (p *Publisher) Forget(plug, instance string) {
	topic := StateTopic(p.cfg.Host, plug, instance)
	p.mu.Lock()
	delete(p.states, topic)
	delete(p.instances, topic)
	p.enqueueLocked(message{topic: topic})
	p.mu.Unlock()
	p.signal()
}

func (p *Publisher) enqueueLocked(m message) {
	if p.queue.push(m) {
		p.dropped.Add(1)
	}
}

// Connected reports whether the broker connection is up.
func (p *Publisher) Connected() bool { return p.connected.Load() }

// Dropped counts the messages dropped because the queue was full.
func (p *Publisher) Dropped() uint64 { return p.dropped.Load() }

// Close publishes every instance it knows as "stopped" (pid 0), sends what
// is queued while ctx allows, publishes "offline" on the status topic
// (retained) and disconnects. It returns ctx's error if the broker did not
// acknowledge "offline" in time. Call it once the instances have stopped.
func (p *Publisher) Close(ctx context.Context) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	now := time.Now()
	topics := make([]string, 0, len(p.instances))
	for t := range p.instances {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		s := p.instances[t]
		if s.State == StateStopped && s.PID == 0 {
			continue // already said (and queued, if the broker is away)
		}
		s.State, s.PID, s.Since = StateStopped, 0, now
		payload, _ := json.Marshal(s)
		p.states[t] = payload
		p.enqueueLocked(message{topic: t, payload: payload})
	}
	p.closed = true
	started, client := p.started, p.client
	p.mu.Unlock()
	if !started {
		return nil
	}
	p.signal()
	select {
	case <-p.done:
	case <-ctx.Done():
		p.cancel()
		<-p.done
	}
	defer p.cancel()

	var err error
	switch {
	case p.cfg.Local != nil && p.connected.Load():
		if lerr := p.cfg.Local(StatusTopic(p.cfg.Host), []byte(StatusOffline)); lerr != nil {
			err = fmt.Errorf("publish offline status: %w", lerr)
		}
	case client.IsConnectionOpen():
		t := client.Publish(StatusTopic(p.cfg.Host), 1, true, StatusOffline)
		select {
		case <-t.Done():
			if t.Error() != nil {
				err = fmt.Errorf("publish offline status: %w", t.Error())
			}
		case <-ctx.Done():
			err = fmt.Errorf("publish offline status: %w", ctx.Err())
		}
	}
	p.cancel()
	<-p.connDone
	// Before the disconnect: paho's Subscribe waits up to its write timeout
	// for a connection that is going down, and would outlive Close.
	p.subs.Wait()
	client.Disconnect(250)
	p.connMu.Lock()
	if p.connected.Swap(false) && p.cfg.OnConnectionChange != nil {
		p.cfg.OnConnectionChange(false)
	}
	p.connMu.Unlock()
	return err
}

func (p *Publisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// publishWindow is how many publishes run waits for at once. One at a
// time, each costs a round trip to the broker and back (~0.1 ms on
// loopback, more on a loaded host), which made a stop of 1,000 instances
// wait ~100 ms for its last states; MQTT brokers read a connection's
// packets in order, so the states of a topic still arrive in order, and
// 16 is far below what brokers accept in flight per client (mochi 1,024,
// Mosquitto unlimited for MQTT 3.1.1).
const publishWindow = 16

// inflight is a publish sent and not yet acknowledged.
type inflight struct {
	topic    string
	token    paho.Token
	deadline time.Time
}

// run drains the queue while connected, up to publishWindow acknowledged
// publishes at a time, so paho's own store never holds more than that of
// ours (a reconnect's clean session forgets them, and the republish after
// it sends every state again). It returns when ctx ends, or once closing
// and everything taken from the queue was acknowledged (or timed out).
func (p *Publisher) run(ctx context.Context) {
	defer close(p.done)
	if p.cfg.Local != nil {
		p.runLocal(ctx)
		return
	}
	var sent []inflight               // oldest first
	timer := time.NewTimer(time.Hour) // Reset before each use (no stale fire since Go 1.23)
	defer timer.Stop()
	for {
		closing := false
		for len(sent) < publishWindow {
			m, ok, c := p.next()
			closing = c
			if !ok {
				break
			}
			sent = append(sent, inflight{m.topic, p.client.Publish(m.topic, 1, true, m.payload), time.Now().Add(p.cfg.PublishTimeout)})
		}
		if len(sent) == 0 {
			if closing {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
			}
			continue
		}
		// Wait for the oldest; a wake-up refills the window meanwhile.
		oldest := sent[0]
		var wake <-chan struct{}
		if len(sent) < publishWindow {
			wake = p.wake
		}
		timer.Reset(time.Until(oldest.deadline))
		select {
		case <-oldest.token.Done():
			if err := oldest.token.Error(); err != nil {
				p.log.Warn("mqtt publish failed", "topic", oldest.topic, "err", err)
			}
			sent = sent[1:]
		case <-timer.C:
			// The state is republished after the next reconnect anyway.
			p.log.Warn("mqtt publish not acknowledged", "topic", oldest.topic, "timeout", p.cfg.PublishTimeout)
			sent = sent[1:]
		case <-wake:
		case <-ctx.Done():
			return
		}
	}
}

// runLocal is run with Config.Local: each message is published in the
// broker's process, done when Local returns.
func (p *Publisher) runLocal(ctx context.Context) {
	for {
		m, ok, closing := p.next()
		if ok {
			if err := p.cfg.Local(m.topic, m.payload); err != nil {
				p.log.Warn("mqtt publish failed", "topic", m.topic, "err", err)
			}
			continue
		}
		if closing {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		}
	}
}

// next returns the next message to send: after a (re)connect the status and
// every known state first, then the queue. Nothing is taken while
// disconnected, so the queue (not paho) holds what waits.
func (p *Publisher) next() (m message, ok, closing bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.connected.Load() {
		return message{}, false, p.closed
	}
	if p.republish {
		p.republish = false
		p.pending = p.pending[:0]
		run, _ := json.Marshal(RunMessage{Run: p.cfg.RunID, PID: os.Getpid(), Started: p.started0.UTC().Truncate(time.Second)})
		p.pending = append(p.pending,
			message{topic: RunTopic(p.cfg.Host), payload: run},
			message{topic: StatusTopic(p.cfg.Host), payload: []byte(StatusOnline)})
		topics := make([]string, 0, len(p.states))
		for t := range p.states {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		for _, t := range topics {
			p.pending = append(p.pending, message{topic: t, payload: p.states[t]})
		}
	}
	if len(p.pending) > 0 {
		m = p.pending[0]
		p.pending = p.pending[1:]
		return m, true, p.closed
	}
	m, ok = p.queue.pop()
	return m, ok, p.closed
}

// parseBrokerURL checks a broker URL (internal/brokerurl); its errors
// never contain a password.
func parseBrokerURL(raw string) (*url.URL, error) { return brokerurl.Parse(raw) }

// RedactURL returns u without its user information, for logs and errors.
// The rule is internal/redact's.
func RedactURL(u *url.URL) string { return redact.URL(u) }
