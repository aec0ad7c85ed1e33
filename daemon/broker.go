package daemon

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/health"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/mqtt"
	"github.com/plugs-dev/plugs/render"
	"github.com/plugs-dev/plugs/spec"
)

// brokerConn is the MQTT side of the daemon: the publisher, and the
// embedded broker when plugs.hcl declares none.
type brokerConn struct {
	info     render.BrokerInfo
	config   *spec.Broker // the broker block it was made from; nil: embedded
	embedded *mqtt.Embedded
	pub      *mqtt.Publisher
}

// startBroker connects the publisher: to the broker block of the deployment
// as it reads now, else to an embedded broker it starts. A later change of
// the broker block needs a daemon restart (it is logged).
func (d *daemon) startBroker(ctx context.Context) error {
	if d.mode == ModeGitOps {
		// The broker block is read from the ref's current commit.
		d.mu.Lock()
		_, _ = d.pollRepo(ctx)
		d.mu.Unlock()
	}
	var block *spec.Broker
	host := ""
	// The first load starts from this read (loader.readAhead).
	if dep := d.loader.readAhead(d.file, d.opts.Vars); dep != nil {
		block, host = dep.Broker, dep.Host
	}
	b := &brokerConn{config: block}
	cfg := mqtt.Config{Host: host, Logger: d.log.With("component", "mqtt")}
	if block == nil {
		auth, err := mqtt.LoadAuth(BrokerDir(d.opts.StateDir))
		if err != nil {
			return &api.Error{Kind: api.KindEnv, Message: err.Error()}
		}
		e, err := mqtt.StartEmbedded(d.opts.BrokerAddr, auth, d.log)
		if err != nil {
			return &api.Error{Kind: api.KindEnv, Message: fmt.Sprintf("%v\nhint: another MQTT broker may listen there; declare it in a broker block of plugs.hcl, or move the embedded one with --broker-addr (e.g. 127.0.0.1:0)", err)}
		}
		b.embedded = e
		host, port := splitHostPort(e.Addr())
		b.info = render.BrokerInfo{URL: e.URL(), Host: host, Port: port, InstanceCredentials: instanceCredentials(auth)}
		cfg.URL = e.URL()
		cfg.Username, cfg.Password = auth.Daemon()
		cfg.KeepAlive = -1 // a loopback connection to itself: nothing to detect, no pings
		// States are retained in-process, not sent through that connection
		// (the stop of 1,000 instances publishes as they stop).
		cfg.Local = e.Publish
	} else {
		b.info = brokerInfoOf(block)
		cfg.URL, cfg.Username, cfg.Password = block.URL, block.Username, block.Password
	}
	b.pub = mqtt.NewPublisher(cfg)
	// Not ctx: the publisher must outlive the stop signal, to send the
	// instances' final states and "offline" (closeBroker ends it).
	if err := b.pub.Start(context.WithoutCancel(ctx)); err != nil {
		if b.embedded != nil {
			_ = b.embedded.Close()
		}
		return fmt.Errorf("mqtt: %w", err)
	}
	d.broker = b
	return nil
}

// BrokerDir holds the embedded broker's credentials (mqtt.LoadAuth): the
// key every account's password derives from, and reader.password.
func BrokerDir(stateDir string) string { return filepath.Join(stateDir, "broker") }

// instanceCredentials hands each instance its own account of the embedded
// broker.
func instanceCredentials(a *mqtt.Auth) func(instance.ID) (string, string) {
	return func(id instance.ID) (string, string) { return a.Instance(id.Plug, id.Instance) }
}

func (d *daemon) closeBroker() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.broker.pub.Close(ctx); err != nil {
		d.log.Warn("mqtt close", "err", err)
	}
	if d.broker.embedded != nil {
		if err := d.broker.embedded.Drain(ctx, d.broker.pub.ClientID()); err != nil {
			d.log.Warn("mqtt close", "err", err)
		}
		_ = d.broker.embedded.Close()
	}
}

// brokerInfo is what instances are told about the broker: always the one
// the daemon is connected to.
func (d *daemon) brokerInfo(dep *spec.Deployment) render.BrokerInfo {
	if !sameBroker(dep.Broker, d.broker.config) {
		d.log.Warn("the broker block changed; restart the daemon to use the new broker")
	}
	return d.broker.info
}

func sameBroker(a, b *spec.Broker) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.URL == b.URL && a.Username == b.Username && a.Password == b.Password
}

func brokerInfoOf(b *spec.Broker) render.BrokerInfo {
	info := render.BrokerInfo{URL: b.URL, Username: b.Username, Password: b.Password}
	if u, err := url.Parse(b.URL); err == nil {
		info.Host, info.Port = splitHostPort(u.Host)
	}
	return info
}

func splitHostPort(hostport string) (string, int) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

// observe receives the runner's status changes and publishes them.
func (d *daemon) observe(st instance.Status) {
	d.health.observe(st)
	d.publishState(st)
}

// publishState publishes an instance's state message, with its health.
func (d *daemon) publishState(st instance.Status) {
	msg := mqtt.StateMessage{
		State:    string(st.State),
		PID:      st.PID,
		Version:  st.Spec.Version,
		Revision: st.Spec.Revision,
		Restarts: st.Restarts,
		Since:    st.Since,
		LastExit: lastExitWord(st.LastExit), // sandbox.go
	}
	if h, ok := d.health.status(st.ID); ok && st.State == instance.StateRunning {
		msg.Health, msg.Ready = h.Health, h.Ready
		if h.Health != health.Healthy {
			msg.HealthOutput = h.LastFailure
		}
	}
	d.broker.pub.PublishState(st.ID.Plug, st.ID.Instance, msg)
	d.ro.poke(st.ID.Plug) // a rollout judges its batch on every status or health change
	d.notifyUIInstance(st)
}
