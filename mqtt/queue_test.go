package mqtt

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func drainRing(r *ring) []string {
	var out []string
	for {
		m, ok := r.pop()
		if !ok {
			return out
		}
		out = append(out, m.topic+"="+string(m.payload))
	}
}

// TestRingReplacesWaitingMessageOfTopic: a message for a topic still waiting
// takes its place (no drop, no second entry); once sent, the topic queues
// anew at the end.
func TestRingReplacesWaitingMessageOfTopic(t *testing.T) {
	r := newRing(4)
	for _, m := range []message{{topic: "a", payload: []byte("stopping")}, {topic: "b", payload: []byte("running")}, {topic: "a", payload: []byte("stopped")}} {
		if r.push(m) {
			t.Fatalf("push %s dropped a message", m.topic)
		}
	}
	if r.len() != 2 {
		t.Fatalf("len = %d, want 2", r.len())
	}
	m, _ := r.pop()
	if m.topic != "a" || string(m.payload) != "stopped" {
		t.Fatalf("first = %s=%s, want a=stopped", m.topic, m.payload)
	}
	r.push(message{topic: "a", payload: []byte("running")})
	if diff := cmp.Diff([]string{"b=running", "a=running"}, drainRing(r)); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// TestRingDropsOldestTopicWhenFull: a new topic in a full ring drops the
// oldest waiting message; a replace in a full ring drops nothing.
func TestRingDropsOldestTopicWhenFull(t *testing.T) {
	r := newRing(3)
	for i := range 3 {
		r.push(message{topic: fmt.Sprint(i), payload: []byte("x")})
	}
	if r.push(message{topic: "1", payload: []byte("y")}) {
		t.Error("a replace in a full ring dropped a message")
	}
	if !r.push(message{topic: "3", payload: []byte("z")}) {
		t.Error("a new topic in a full ring dropped nothing")
	}
	// Topic 0, dropped, queues anew.
	if !r.push(message{topic: "0", payload: []byte("w")}) {
		t.Error("a new topic in a full ring dropped nothing")
	}
	if diff := cmp.Diff([]string{"2=x", "3=z", "0=w"}, drainRing(r)); diff != "" {
		t.Errorf("queue (-want +got):\n%s", diff)
	}
	if len(r.at) != 0 {
		t.Errorf("index keeps %d topics of an empty ring", len(r.at))
	}
}

// TestStopQueuesOneMessagePerInstance: with the broker away, the states of
// a start and a stop of 1,000 instances (starting, running, stopping,
// stopped) wait as 1,000 messages, the last state of each, none dropped.
func TestStopQueuesOneMessagePerInstance(t *testing.T) {
	p := NewPublisher(Config{URL: "tcp://127.0.0.1:1", Host: "h"}) // never started: nothing sends
	for _, st := range []string{"starting", "running", "stopping", StateStopped} {
		for i := range 1000 {
			p.PublishState("p", fmt.Sprint(i), StateMessage{State: st})
		}
	}
	if got := p.queue.len(); got != 1000 {
		t.Errorf("%d messages wait, want 1000", got)
	}
	if p.Dropped() != 0 {
		t.Errorf("Dropped() = %d, want 0", p.Dropped())
	}
	for _, m := range drainRing(p.queue) {
		if want := `"state":"stopped"`; !strings.Contains(m, want) {
			t.Fatalf("waiting message %s, want its last state (%s)", m, want)
		}
	}
}
