package mqtt

import (
	"net/url"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// dataWatch is the publisher's subscription to its host's data topics, for
// health checks and data freshness: made again after every connect, since
// sessions are clean.
type dataWatch struct {
	mu sync.Mutex
	fn func(plug, instance string, at time.Time)
}

// WatchData calls fn for every message published on a data topic of the
// publisher's host (plugs/<host>/+/+/data), with the plug and instance
// names unescaped and the time it arrived. It subscribes on every connect
// from now on (and at once when connected). fn must not block for long:
// paho calls it in a goroutine of its own per message.
func (p *Publisher) WatchData(fn func(plug, instance string, at time.Time)) {
	p.watch.mu.Lock()
	p.watch.fn = fn
	p.watch.mu.Unlock()
	p.mu.Lock()
	c := p.client
	p.mu.Unlock()
	if c != nil && c.IsConnectionOpen() {
		p.goSubscribeData(c)
	}
}

// goSubscribeData runs subscribeData in a goroutine Close waits for, unless
// the publisher is closed: none starts once Close has begun.
func (p *Publisher) goSubscribeData(c paho.Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.subs.Go(func() { p.subscribeData(c) })
}

// DataFilter is the subscription WatchData makes.
func DataFilter(host string) string {
	return "plugs/" + EscapeTopicSegment(host) + "/+/+/data"
}

// subscribeData subscribes c to the data topics when a watch is set; it is
// called from the connect handler.
func (p *Publisher) subscribeData(c paho.Client) {
	p.watch.mu.Lock()
	fn := p.watch.fn
	p.watch.mu.Unlock()
	if fn == nil {
		return
	}
	tok := c.Subscribe(DataFilter(p.cfg.Host), 0, func(_ paho.Client, m paho.Message) {
		plug, inst, ok := parseDataTopic(m.Topic())
		if ok {
			fn(plug, inst, time.Now())
		}
	})
	if !tok.WaitTimeout(p.cfg.PublishTimeout) || tok.Error() != nil {
		p.log.Warn("subscribe to data topics", "filter", DataFilter(p.cfg.Host), "err", tok.Error())
	}
}

// parseDataTopic splits plugs/<host>/<plug>/<instance>/data.
func parseDataTopic(topic string) (plug, instance string, ok bool) {
	parts := strings.Split(topic, "/")
	if len(parts) != 5 || parts[0] != "plugs" || parts[4] != "data" {
		return "", "", false
	}
	plug, err1 := url.PathUnescape(parts[2])
	instance, err2 := url.PathUnescape(parts[3])
	return plug, instance, err1 == nil && err2 == nil
}
