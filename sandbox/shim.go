package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ShimArg0 is the argv[0] under which the daemon's executable acts as the
// sandbox shim instead of its usual self.
const ShimArg0 = "plugs-sandbox-exec"

// policyEnv carries the Policy (JSON) from the daemon to the shim; the shim
// removes it before it execs the plugin.
const policyEnv = "PLUGS_SANDBOX_POLICY"

// reportFD is the shim's fd on which it reports a failure before exiting;
// on success the exec closes it (close-on-exec) with nothing written.
const reportFD = 3

// Policy is everything the shim applies to itself before it execs the
// plugin. It is plain data, handed over in the environment.
type Policy struct {
	Path string   // the plugin's executable, resolved
	Argv []string // its argv

	// Cgroups are the cgroup.procs files the shim joins first.
	Cgroups []string `json:",omitempty"`
	// Rlimits are set before anything else can allocate.
	Rlimits []Rlimit `json:",omitempty"`

	// Landlock: when false nothing of the filesystem or network is
	// restricted.
	Landlock bool
	ReadOnly []string `json:",omitempty"` // read and execute
	// ReadOnlyOptional are system paths that may be missing on this host.
	ReadOnlyOptional []string `json:",omitempty"`
	ReadWrite        []string `json:",omitempty"`
	// Devices are read-write paths that also get the ioctl right (serial
	// ports, ...).
	Devices []string `json:",omitempty"`
	// RestrictNet limits TCP to the Connect and Bind ports.
	RestrictNet bool
	Connect     []uint16 `json:",omitempty"`
	Bind        []uint16 `json:",omitempty"`

	// Credentials: with SwitchUser the shim takes Uid, Gid and exactly the
	// supplementary Groups.
	SwitchUser bool
	UID, GID   uint32
	Groups     []uint32 `json:",omitempty"`

	NoNewPrivs bool
}

// Rlimit is one resource limit (a unix.RLIMIT_* resource, soft = hard).
type Rlimit struct {
	Resource int
	Value    uint64
}

// MaybeExec turns the process into the sandbox shim when it was started
// under ShimArg0: it applies the policy and execs the plugin, and never
// returns then. Otherwise it returns at once. Call it first in main (and in
// TestMain of tests that start sandboxed children).
func MaybeExec() {
	if len(os.Args) == 0 || os.Args[0] != ShimArg0 {
		return
	}
	err := runShim()
	report := os.NewFile(reportFD, "report")
	msg := "sandbox: " + err.Error()
	if _, werr := report.WriteString(msg); werr != nil {
		fmt.Fprintln(os.Stderr, "plugs "+msg)
	}
	os.Exit(127)
}

func runShim() error {
	// Every step below changes the calling thread (credentials, Landlock,
	// the parent-death signal); the exec at the end runs from it too.
	runtime.LockOSThread()
	ppid := os.Getppid()
	raw, ok := os.LookupEnv(policyEnv)
	if !ok {
		return errors.New("no policy in the environment")
	}
	var p Policy
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return fmt.Errorf("decode policy: %w", err)
	}
	env := make([]string, 0, len(os.Environ()))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, policyEnv+"=") {
			env = append(env, kv)
		}
	}
	if _, _, errno := unix.Syscall(unix.SYS_FCNTL, reportFD, unix.F_SETFD, unix.FD_CLOEXEC); errno != 0 {
		return fmt.Errorf("report fd: %w", errno)
	}
	self := []byte(fmt.Sprint(os.Getpid()))
	for _, procs := range p.Cgroups {
		if err := os.WriteFile(procs, self, 0); err != nil {
			return fmt.Errorf("join cgroup: %w", err)
		}
	}
	for _, rl := range p.Rlimits {
		lim := unix.Rlimit{Cur: rl.Value, Max: rl.Value}
		if err := unix.Setrlimit(rl.Resource, &lim); err != nil {
			return fmt.Errorf("rlimit %d: %w", rl.Resource, err)
		}
	}
	// The ruleset is built while still privileged (root may open paths the
	// plugin's user cannot), and enforced after the switch.
	ruleset, flags, err := p.landlockRuleset()
	if err != nil {
		return fmt.Errorf("landlock: %w", err)
	}
	if p.SwitchUser {
		if err := switchUser(p.UID, p.GID, p.Groups); err != nil {
			return err
		}
		// A credential change clears the parent-death signal: set it
		// again, and give up if the daemon died meanwhile.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
			return fmt.Errorf("parent-death signal: %w", err)
		}
		if os.Getppid() != ppid {
			return errors.New("the daemon exited")
		}
	}
	if p.NoNewPrivs || ruleset >= 0 {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	if ruleset >= 0 {
		if err := restrictSelf(ruleset, flags); err != nil {
			return fmt.Errorf("landlock: %w", err)
		}
	}
	err = syscall.Exec(p.Path, p.Argv, env)
	return fmt.Errorf("exec %s: %w", p.Path, err)
}

// switchUser sets the calling thread's groups, gid and uid (raw syscalls:
// only this thread, which is the one that execs, needs them).
func switchUser(uid, gid uint32, groups []uint32) error {
	gs := make([]uint32, len(groups))
	copy(gs, groups)
	var errno syscall.Errno
	if len(gs) > 0 {
		_, _, errno = unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gs)), uintptr(unsafe.Pointer(&gs[0])), 0)
	} else {
		_, _, errno = unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0)
	}
	if errno != 0 {
		return fmt.Errorf("setgroups: %w", errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); errno != 0 {
		return fmt.Errorf("setresgid %d: %w", gid, errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); errno != 0 {
		return fmt.Errorf("setresuid %d: %w", uid, errno)
	}
	return nil
}
