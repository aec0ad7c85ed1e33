package runner

import (
	"sync"

	"github.com/plugs-dev/plugs/reconcile"
)

// notifier delivers status changes to an observer from its own goroutine,
// so a slow observer never blocks supervision. Changes are coalesced per
// instance: the observer may miss intermediate states of a busy instance,
// but always receives the latest one, and instances in the order they
// changed.
type notifier struct {
	fn func(reconcile.InstanceStatus)

	mu      sync.Mutex
	pending map[reconcile.InstanceID]reconcile.InstanceStatus
	order   []reconcile.InstanceID

	wake chan struct{}
	quit chan struct{}
	done chan struct{}
}

func newNotifier(fn func(reconcile.InstanceStatus)) *notifier {
	n := &notifier{
		fn:      fn,
		pending: map[reconcile.InstanceID]reconcile.InstanceStatus{},
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go n.loop()
	return n
}

func (n *notifier) post(s reconcile.InstanceStatus) {
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
	n.order, n.pending = nil, map[reconcile.InstanceID]reconcile.InstanceStatus{}
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
