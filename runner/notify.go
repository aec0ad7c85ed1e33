package runner

import (
	"sync"

	"github.com/plugs-dev/plugs/instance"
)

// notifier delivers status changes to an observer from its own goroutine,
// so a slow observer never blocks supervision. Changes are coalesced per
// instance: the observer may miss intermediate states of a busy instance,
// but always receives the latest one, and instances in the order they
// changed.
type notifier struct {
	fn func(instance.Status)

	mu      sync.Mutex
	pending map[instance.ID]instance.Status
	order   []instance.ID

	wake chan struct{}
	quit chan struct{}
	done chan struct{}
}

func newNotifier(fn func(instance.Status)) *notifier {
	n := &notifier{
		fn:      fn,
		pending: map[instance.ID]instance.Status{},
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go n.loop()
	return n
}

func (n *notifier) post(s instance.Status) {
	n.mu.Lock()
	if _, ok := n.pending[s.ID]; !ok {
		n.order = append(n.order, s.ID)
	}
	n.pending[s.ID] = s
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

func (n *notifier) loop() {
	defer close(n.done)
	for {
		select {
		case <-n.wake:
			n.flush()
		case <-n.quit:
			n.flush()
			return
		}
	}
}

func (n *notifier) flush() {
	n.mu.Lock()
	order, pending := n.order, n.pending
	n.order, n.pending = nil, map[instance.ID]instance.Status{}
	n.mu.Unlock()
	for _, id := range order {
		n.fn(pending[id])
	}
}

// close delivers what is pending and stops the goroutine.
func (n *notifier) close() {
	close(n.quit)
	<-n.done
}
