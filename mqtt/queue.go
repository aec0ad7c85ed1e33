package mqtt

// message is one publish waiting for the broker.
type message struct {
	topic    string
	payload  []byte
	retained bool
}

// ring is a bounded FIFO of messages that drops its oldest entry when full.
// It is not safe for concurrent use; the Publisher guards it.
type ring struct {
	buf   []message
	head  int // index of the oldest message
	count int
}

func newRing(size int) *ring { return &ring{buf: make([]message, size)} }

// push appends m, dropping the oldest message when the ring is full. It
// reports whether a message was dropped.
func (r *ring) push(m message) (dropped bool) {
	if r.count == len(r.buf) {
		r.buf[r.head] = m
		r.head = (r.head + 1) % len(r.buf)
		return true
	}
	r.buf[(r.head+r.count)%len(r.buf)] = m
	r.count++
	return false
}

// pop removes and returns the oldest message.
func (r *ring) pop() (message, bool) {
	if r.count == 0 {
		return message{}, false
	}
	m := r.buf[r.head]
	r.buf[r.head] = message{} // let the payload be collected
	r.head = (r.head + 1) % len(r.buf)
	r.count--
	return m, true
}

func (r *ring) len() int { return r.count }
