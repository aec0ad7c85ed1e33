package runner

import (
	"context"
	"fmt"

	"github.com/plugs-dev/plugs/instance"
)

// RestartUnhealthy stops an instance's process (stop signal, stop timeout,
// SIGKILL) because its health checks failed, and restarts it through the
// restart policy's backoff, as if it had crashed: a crash loop of
// unhealthy starts is contained like any other. reason becomes the
// backoff's reason in status. It returns once the process has stopped.
func (r *Runner) RestartUnhealthy(ctx context.Context, id instance.ID, reason string) error {
	r.mu.Lock()
	in := r.insts[id]
	r.mu.Unlock()
	if in == nil {
		return fmt.Errorf("restart %s: no such instance", id)
	}
	m := ctlMsg{ctx: ctx, restart: true, reply: make(chan error, 1), unhealthy: reason}
	select {
	case in.ctl <- m:
	case <-in.done:
		return fmt.Errorf("restart %s: instance stopped", id)
	}
	select {
	case err := <-m.reply:
		return err
	case <-in.done:
		return fmt.Errorf("restart %s: instance stopped", id)
	}
}

// Status is the current status of one instance, as Observe shows it; ok
// is false for an instance the runner does not know. Unlike the Observer,
// which may lag, it is never behind: the daemon's readiness waits read it.
func (r *Runner) Status(id instance.ID) (st instance.Status, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if in := r.insts[id]; in != nil {
		return in.status, true
	}
	return instance.Status{}, false
}
