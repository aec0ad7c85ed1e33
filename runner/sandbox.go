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
// Without one, instances and their one-shot runs run as before: their
// process group, rlimits and the plug's user only.
type Sandboxer interface {
	// Prepare readies one start: the program to fork instead of the
	// plugin (the shim), its environment and extra files, and the cgroup
	// req.Plug/req.Instance (an instance's, or a run's: runCgroup).
	Prepare(req sandbox.Request) (*sandbox.Start, error)
	// Release kills what is left in the cgroup plug/instance and removes
	// it: an instance's once it is stopped for good, a run's once it
	// ended.
	Release(plug, instance string) error
}

var _ Sandboxer = (*sandbox.Sandbox)(nil)

// sandboxed turns the fork of path into a fork of the sandbox shim, which
// confines itself and then execs path (same pid), in the instance's
// cgroup. Without a Sandboxer it returns path and the command unchanged.
func (in *supervised) sandboxed(spec instance.Spec, path string, attr *os.ProcAttr) (string, []string, *sandbox.Start, error) {
	sb := in.r.opts.Sandbox
	if sb == nil {
		return path, spec.Command, nil, nil
	}
	path, argv, st, err := confine(sb, spec, in.id.Instance, in.dir, SetupDir(in.r.opts.StateDir, in.id.Plug), path, spec.Command, attr)
	if err != nil {
		return "", nil, nil, err
	}
	in.r.mu.Lock()
	in.box = st
	in.r.mu.Unlock()
	return path, argv, st, nil
}

// confine prepares the fork of path with argv, as attr says, as a fork of
// the sandbox shim that confines itself as spec says (user, Landlock rules
// from its permissions and sandbox block, rlimits, no_new_privs, the
// cgroup named group of spec's plug with spec's limits) and then execs
// path. It is the one place a spec becomes a sandbox.Request: an
// instance's process (group: the instance's name) and every one-shot run
// of it (a group of its own, runCgroup) are confined alike.
//
// It sets attr.Env to the shim's and drops attr's credential: the shim
// switches users after joining the cgroup. The caller forks the returned
// path and argv with st.Files from descriptor 3 on, then calls
// st.Started.
func confine(sb Sandboxer, spec instance.Spec, group, instanceDir, setupDir, path string, argv []string, attr *os.ProcAttr) (string, []string, *sandbox.Start, error) {
	st, err := sb.Prepare(sandbox.Request{
		Plug: spec.ID.Plug, Instance: group, Dir: spec.Dir, InstanceDir: instanceDir, SetupDir: setupDir,
		Path: path, Argv: argv, Env: attr.Env,
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
		attr.Sys.Credential = nil
	}
	return st.Path, st.Argv, st, nil
}

// runCgroup names the cgroup of one one-shot run of an instance (a hook,
// a task's run, an exec check), a sibling of the instance's own: a run
// that ends kills what is left in its cgroup, never the instance's
// process, which may be running. '@' is in no instance name
// (names.ValidChars), so no run's cgroup is an instance's.
func runCgroup(inst, key string) string { return inst + "@" + key }

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
	e.OOMKilled = in.r.killCgroup(in.id, st)
}

// killCgroup kills every process left in st's cgroup and reports whether
// the kernel killed one at its memory limit since st was prepared.
func (r *Runner) killCgroup(id instance.ID, st *sandbox.Start) (oomKilled bool) {
	if err := st.Kill(); err != nil {
		r.log.Warn("kill cgroup", "plug", id.Plug, "instance", id.Instance, "err", err)
	}
	return st.OOMKilled()
}

// releaseSandbox removes the cgroup of an instance stopped for good.
func (in *supervised) releaseSandbox() {
	if sb := in.r.opts.Sandbox; sb != nil {
		in.r.releaseCgroup(sb, in.id.Plug, in.id.Instance)
	}
}

// releaseCgroup kills what is left in the cgroup group of plug and removes
// it: an instance's once it is stopped for good, a run's once it ended.
func (r *Runner) releaseCgroup(sb Sandboxer, plug, group string) {
	if err := sb.Release(plug, group); err != nil {
		r.log.Warn("remove cgroup", "plug", plug, "instance", group, "err", err)
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
