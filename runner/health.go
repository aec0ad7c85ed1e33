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
