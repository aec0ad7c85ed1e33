package runner

import (
	"fmt"
	"os"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/sandbox"
)

// Sandboxer confines the processes of instances: package sandbox
// implements it, and the daemon hands one to the Runner (Options.Sandbox).
// Without one, instances run as before: their process group, rlimits and
// the plug's user only.
type Sandboxer interface {
	// Prepare readies one start: the program to fork instead of the
	// plugin (the shim), its environment and extra files, and the
	// instance's cgroup.
	Prepare(req sandbox.Request) (*sandbox.Start, error)
	// Release kills what is left of an instance and removes its cgroup,
	// once the instance is stopped for good.
	Release(plug, instance string) error
}

var _ Sandboxer = (*sandbox.Sandbox)(nil)

// sandboxed turns the fork of path into a fork of the sandbox shim, which
// confines itself and then execs path (same pid). Without a Sandboxer it
// returns path and the command unchanged.
func (in *supervised) sandboxed(spec instance.Spec, path string, attr *os.ProcAttr) (string, []string, *sandbox.Start, error) {
	sb := in.r.opts.Sandbox
	if sb == nil {
		return path, spec.Command, nil, nil
	}
	st, err := sb.Prepare(sandbox.Request{
		Plug: in.id.Plug, Instance: in.id.Instance, Dir: spec.Dir, InstanceDir: in.dir,
		Path: path, Argv: spec.Command, Env: attr.Env,
		Permissions: spec.Permissions, NoLandlock: spec.NoSandbox,
		User: spec.User, Group: spec.Group, Groups: spec.Groups,
		BrokerPort: uint16(spec.BrokerPort),
		Limits: sandbox.Limits{
			Memory: spec.Limits.Memory, CPU: spec.Limits.CPU, PIDs: spec.Limits.PIDs,
			NoFile: spec.Limits.NoFile, AddrSpace: spec.Limits.AddrSpace, NProc: spec.Limits.NProc,
			NoNewPrivs: spec.Limits.NoNewPrivs,
		},
	})
	if err != nil {
		return "", nil, nil, fmt.Errorf("sandbox: %w", err)
	}
	attr.Env = st.Env
	if attr.Sys != nil {
		attr.Sys.Credential = nil // the shim switches users, after joining the cgroup
	}
	in.r.mu.Lock()
	in.box = st
	in.r.mu.Unlock()
	return st.Path, st.Argv, st, nil
}

// sandboxStarted waits for the shim to exec the plugin; on its failure the
// shim has exited (127) and the error says why.
func (in *supervised) sandboxStarted(st *sandbox.Start, p *process) error {
	if st == nil {
		return nil
	}
	if err := st.Started(nil); err != nil {
		in.waitExit(p)
		return err
	}
	return nil
}

// sandboxExit kills what is left in the instance's cgroup once its main
// process is gone (setsid'd, double-forked grandchildren included) and
// notes whether the kernel killed it at its memory limit.
func (in *supervised) sandboxExit(st *sandbox.Start, e *instance.Exit) {
	if st == nil {
		return
	}
	if err := st.Kill(); err != nil {
		in.r.log.Warn("kill cgroup", "plug", in.id.Plug, "instance", in.id.Instance, "err", err)
	}
	e.OOMKilled = st.OOMKilled()
}

// releaseSandbox removes the cgroup of an instance stopped for good.
func (in *supervised) releaseSandbox() {
	if sb := in.r.opts.Sandbox; sb != nil {
		if err := sb.Release(in.id.Plug, in.id.Instance); err != nil {
			in.r.log.Warn("remove cgroup", "plug", in.id.Plug, "instance", in.id.Instance, "err", err)
		}
	}
}

// Usage is an instance's CPU time and memory from its cgroup; ok is false
// when it has none (no sandbox, no cgroups, not started), and callers
// then sum its processes from /proc.
func (r *Runner) Usage(id instance.ID) (cpu time.Duration, memory uint64, ok bool) {
	r.mu.Lock()
	in := r.insts[id]
	var st *sandbox.Start
	if in != nil {
		st = in.box
	}
	r.mu.Unlock()
	if st == nil {
		return 0, 0, false
	}
	return st.Usage()
}

// SandboxSummary is the one line of what an instance's current process may
// do ("" without a sandbox).
func (r *Runner) SandboxSummary(id instance.ID) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if in := r.insts[id]; in != nil && in.box != nil {
		return in.box.Summary
	}
	return ""
}
