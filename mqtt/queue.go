package mqtt

// message is one publish waiting for the broker. Every one is retained
// (states, reconcile, run, status): the ring's one message per topic
// relies on it, as only a topic's last retained payload counts.
type message struct {
	topic   string
	payload []byte
}

// ring is a bounded FIFO of retained messages, one per topic: a message
// for a topic that is still waiting replaces it in place (only the last
// retained payload of a topic counts, and it goes out no later than the
// one it replaced would have), and when a new topic finds the ring full,
// the oldest message is dropped. A stop of 1,000 instances so queues
// 1,000 messages ("stopped" replacing "stopping"), not 2,000 of which the
// first half is stale. It is not safe for concurrent use; the Publisher
// guards it.
type ring struct {
	buf   []message
	first uint64            // position of the oldest message; buf[pos%len(buf)]
	count int               // messages waiting, at positions first..first+count-1
	at    map[string]uint64 // topic → its waiting message's position
}

func newRing(size int) *ring {
	return &ring{buf: make([]message, size), at: make(map[string]uint64, size)}
}

// push queues m, or replaces the waiting message of its topic. It reports
// whether a message of another topic was dropped to make room.
func (r *ring) push(m message) (dropped bool) {
	if pos, ok := r.at[m.topic]; ok {
		r.buf[pos%uint64(len(r.buf))] = m
		return false
	}
	if r.count == len(r.buf) {
		r.popOldest()
		dropped = true
	}
	pos := r.first + uint64(r.count)
	r.buf[pos%uint64(len(r.buf))] = m
	r.at[m.topic] = pos
	r.count++
	return dropped
}

// pop removes and returns the oldest message.
func (r *ring) pop() (message, bool) {
	if r.count == 0 {
		return message{}, false
	}
	return r.popOldest(), true
}

func (r *ring) popOldest() message {
	i := r.first % uint64(len(r.buf))
	m := r.buf[i]
	r.buf[i] = message{} // let the payload be collected
	delete(r.at, m.topic)
	r.first++
	r.count--
	return m
}

func (r *ring) len() int { return r.count }
