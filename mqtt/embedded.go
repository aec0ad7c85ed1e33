package mqtt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// DefaultEmbeddedAddr is where the embedded broker listens when plugs.hcl
// has no broker block.
const DefaultEmbeddedAddr = "127.0.0.1:1883"

// Embedded is an MQTT broker running inside the daemon, for hosts without
// one. It listens on a loopback address only, accepts only loopback clients
// that log in with an account of its Auth (never anonymously), lets each
// do what aclRules grant its role, and keeps retained messages for as long
// as it runs.
type Embedded struct {
	auth *Auth
	srv  *mochi.Server
	tcp  *listeners.TCP
	once sync.Once
}

// StartEmbedded starts a broker listening on addr ("" means
// DefaultEmbeddedAddr), which must be a loopback address such as
// 127.0.0.1:1883, [::1]:1883 or localhost:1883 (port 0 picks a free port).
// auth (required) checks every login.
func StartEmbedded(addr string, auth *Auth, logger *slog.Logger) (*Embedded, error) {
	if auth == nil {
		return nil, errors.New("embedded broker: no credentials")
	}
	if addr == "" {
		addr = DefaultEmbeddedAddr
	}
	addr, err := loopbackAddr(addr)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	caps := mochi.NewDefaultServerCapabilities()
	// mochi deletes any message, retained ones included, older than this
	// (24 h by default); 0 keeps them until replaced or cleared.
	caps.MaximumMessageExpiryInterval = 0
	srv := mochi.New(&mochi.Options{
		Capabilities: caps,
		// The $SYS topics are published once, at start, and not again: a
		// resend would wake the daemon every interval (68 years here).
		SysTopicResendInterval: math.MaxInt32,
		// The broker's own client, for Publish.
		InlineClient: true,
		Logger:       slog.New(dropPacketAttrs{logger.With("component", "mqtt-broker").Handler()}),
	})
	if err := srv.AddHook(&authHook{auth: auth}, nil); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{Type: listeners.TypeTCP, ID: "plugs", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("embedded broker listen on %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return &Embedded{auth: auth, srv: srv, tcp: tcp}, nil
}

// Addr is the address the broker listens on, e.g. 127.0.0.1:1883.
func (e *Embedded) Addr() string { return e.tcp.Address() }

// URL is the broker's URL for clients, e.g. tcp://127.0.0.1:1883.
func (e *Embedded) URL() string { return "tcp://" + e.Addr() }

// MessageExpiry is the broker's cap on message age in seconds; 0 means
// retained messages never expire.
func (e *Embedded) MessageExpiry() int64 {
	return e.srv.Options.Capabilities.MaximumMessageExpiryInterval
}

// Publish makes a retained QoS 1 publish in the broker itself (mochi's
// inline client, which no ACL restricts): the message is retained and
// handed to every subscriber's outbound queue before Publish returns, with
// no connection, packet or acknowledgement in between. It is the daemon's
// Publisher's Config.Local on the embedded broker: a stop of 1,000
// instances so costs no round trip and no goroutine woken by the network
// poller (which 1,000 busy stop goroutines starve), and its "stopped"
// states are retained as fast as the instances stop. An empty payload
// clears the topic's retained message.
func (e *Embedded) Publish(topic string, payload []byte) error {
	return e.srv.Publish(topic, payload, true, 1)
}

// Drain waits, until ctx ends, for the client clientID to be gone (its
// DISCONNECT is read after its last publish was handed to every subscriber:
// the broker acknowledges a publish before it fans it out), then for every
// client's outbound queue to be written and its QoS 1 and 2 messages to be
// acknowledged, so that subscribers get the daemon's last messages
// ("offline") before Close cuts them off. Written is not enough: a
// subscriber whose acknowledgements the broker has not read yet gets a
// reset when the broker closes, and loses what it had not read (under
// load, the last 3-39 of 500 states and "offline" in
// TestEmbeddedDrainDeliversLastMessages, about 1 run in 15).
func (e *Embedded) Drain(ctx context.Context, clientID string) error {
	busy := func() bool {
		for _, cl := range e.srv.Clients.GetAll() {
			if !cl.Closed() && (cl.ID == clientID || cl.OutboundPending() > 0 || cl.State.Inflight.Len() > 0) {
				return true
			}
		}
		return false
	}
	tick := time.NewTicker(2 * time.Millisecond) // at shutdown only, bounded by ctx
	defer tick.Stop()
	for busy() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("embedded broker: drain: %w", ctx.Err())
		case <-tick.C:
		}
	}
	return nil
}

// Close disconnects every client and stops the broker. Retained messages
// are lost: they live in memory only.
func (e *Embedded) Close() error {
	e.once.Do(func() { _ = e.srv.Close() })
	return nil
}

// loopbackAddr checks that addr names a loopback address and returns it
// with "localhost" resolved to 127.0.0.1.
func loopbackAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("embedded broker address %q: %w", addr, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("embedded broker address %q: must be a loopback address (127.0.0.1, ::1 or localhost): the embedded broker has no authentication", addr)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// isLoopbackRemote reports whether a client's remote address is loopback.
func isLoopbackRemote(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authHook admits clients that connect from a loopback address with the
// credentials of an account of auth, and lets each do what aclRules grant
// its role. A will is a publish the broker makes for the client later, so
// its topic is checked at connect. The daemon's client ids ("plugs-…") are
// the daemon's only, and the broker's own ("inline") nobody's: another
// account cannot take their sessions over.
type authHook struct {
	mochi.HookBase
	auth *Auth
}

func (h *authHook) ID() string { return "plugs-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnConnectAuthenticate, mochi.OnACLCheck}, []byte{b})
}

func (h *authHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if !isLoopbackRemote(cl.Net.Remote) {
		return false
	}
	if cl.ID == mochi.InlineClientId {
		return false // the broker's own (Publish): a takeover would end it
	}
	acct := h.auth.Check(string(pk.Connect.Username), string(pk.Connect.Password))
	if acct.Role == RoleNone {
		return false
	}
	if acct.Role != RoleDaemon && strings.HasPrefix(cl.ID, daemonClientIDPrefix) {
		return false
	}
	if pk.Connect.WillFlag && !allowed(acct, pk.Connect.WillTopic, true) {
		return false
	}
	return true
}

func (h *authHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	return allowed(accountOf(string(cl.Properties.Username)), topic, write)
}

// dropPacketAttrs keeps whole packets out of the broker's log: mochi logs
// the packet that failed, and a CONNECT packet carries the client's password.
type dropPacketAttrs struct{ slog.Handler }

func (h dropPacketAttrs) Handle(ctx context.Context, r slog.Record) error {
	clean := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "pk" {
			clean.AddAttrs(a)
		}
		return true
	})
	return h.Handler.Handle(ctx, clean)
}

func (h dropPacketAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	kept := as[:0:0]
	for _, a := range as {
		if a.Key != "pk" {
			kept = append(kept, a)
		}
	}
	return dropPacketAttrs{h.Handler.WithAttrs(kept)}
}

func (h dropPacketAttrs) WithGroup(name string) slog.Handler {
	return dropPacketAttrs{h.Handler.WithGroup(name)}
}
