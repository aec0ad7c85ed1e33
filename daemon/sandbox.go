package daemon

import (
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/runner"
	"github.com/plugs-dev/plugs/sandbox"
)

// openSandbox makes the sandbox every instance runs in (Options.Sandbox):
// it logs what this host enforces and what it cannot. The returned close
// removes the daemon's cgroup subtree; call it after the runner closed.
func (d *daemon) openSandbox() (runner.Sandboxer, func(), error) {
	if !d.opts.Sandbox {
		d.sandboxLines = []string{"off (plugs run --sandbox=false): plugins run with the daemon's rights"}
		d.log.Warn("sandbox off: plugins run with the daemon's rights")
		return nil, func() {}, nil
	}
	sb, err := sandbox.New(sandbox.Options{StateDir: d.opts.StateDir, Log: d.log})
	if err != nil {
		return nil, nil, err
	}
	d.sandboxLines = sb.Status()
	for _, l := range d.sandboxLines {
		d.log.Info("sandbox", "enforces", l)
	}
	return sb, func() {
		if err := sb.Close(); err != nil {
			d.log.Warn("remove cgroups", "err", err)
		}
	}, nil
}

// Usage makes the daemon a metrics.CgroupUsage: an instance's CPU and
// memory from its cgroup.
func (d *daemon) Usage(id instance.ID) (time.Duration, uint64, bool) {
	return d.runner.Usage(id)
}

// lastExitWord is the last_exit of an instance's MQTT state: "oom-killed"
// when the kernel killed it at its memory limit, else "".
func lastExitWord(e *instance.Exit) string {
	if e != nil && e.OOMKilled {
		return "oom-killed"
	}
	return ""
}
