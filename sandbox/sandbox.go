package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plugs-dev/plugs/sandbox/cgroup"
	"github.com/plugs-dev/plugs/sandbox/perms"
)

// Limits are an instance's resource limits; zero means unset.
type Limits struct {
	Memory     uint64  // bytes (cgroup)
	CPU        float64 // cores (cgroup)
	PIDs       uint64  // processes and threads (cgroup)
	NoFile     uint64  // RLIMIT_NOFILE
	AddrSpace  uint64  // RLIMIT_AS, bytes
	NProc      uint64  // RLIMIT_NPROC
	NoNewPrivs bool
}

// Request is one start of one instance, as the runner knows it.
type Request struct {
	Plug, Instance string
	Dir            string // the plugin's tree: read-only (and the working directory)
	InstanceDir    string // read-write, owned by the instance's user
	// SetupDir is the plug's setup folder (PLUGS_SETUP_DIR), where its
	// setup program saved what the plugin reads: read-write, owned by the
	// instance's user, when it exists ("": none).
	SetupDir string
	Path     string // the resolved executable
	Argv     []string
	Env      []string

	// Permissions are the manifest's and the plug's sandbox block's.
	Permissions []string
	// NoLandlock turns the filesystem and network rules off (sandbox {
	// enabled = false }); limits and the user switch still apply.
	NoLandlock bool
	// User and Group as written in plugs.hcl ("" for the default);
	// Groups are the supplementary groups asked for.
	User, Group string
	Groups      []string
	BrokerPort  uint16 // 0: no broker to reach
	Limits      Limits
}

// Options configure a Sandbox.
type Options struct {
	// Shim is the executable re-executed as the shim; it must call
	// MaybeExec first. Default: this process's own executable.
	Shim string
	// StateDir is the daemon's state directory: it names the cgroup
	// subtree, and the directories inside it on the way to an instance
	// directory are made traversable for unprivileged users.
	StateDir string
	// Cgroups is the cgroup subtree to use; nil: found with cgroup.Open,
	// and none when that fails (the limits are then reported as not
	// enforced).
	Cgroups *cgroup.Root
	// NoCgroups skips cgroups altogether.
	NoCgroups bool
	// Users creates the unprivileged users; nil: Users{Prefix: "plugs-"}.
	Users *Users
	// ReadOnly are extra paths every instance may read (tests add their
	// own binary's folder).
	ReadOnly []string
	Log      *slog.Logger
}

// Sandbox confines instance processes. It is safe for concurrent use.
type Sandbox struct {
	opts  Options
	abi   int
	root  bool
	cg    *cgroup.Root
	cgErr string
	users *Users

	mu     sync.Mutex
	groups map[string]*cgroup.Group // plug/instance
}

// New probes Landlock and the cgroups and returns a Sandbox.
func New(opts Options) (*Sandbox, error) {
	if opts.Shim == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("sandbox shim: %w", err)
		}
		opts.Shim = exe
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Sandbox{opts: opts, abi: LandlockABI(), root: os.Geteuid() == 0, users: opts.Users, groups: map[string]*cgroup.Group{}}
	if s.users == nil {
		s.users = &Users{}
	}
	switch {
	case opts.NoCgroups:
		s.cgErr = "cgroups turned off"
	case opts.Cgroups != nil:
		s.cg = opts.Cgroups
	default:
		abs, _ := filepath.Abs(opts.StateDir)
		sum := sha256.Sum256([]byte(abs))
		root, err := cgroup.Open("plugs-" + hex.EncodeToString(sum[:4]))
		if err != nil {
			s.cgErr = err.Error()
		} else {
			s.cg = root
			s.sweepRuns()
		}
	}
	return s, nil
}

// sweepRuns removes the one-shot runs' groups (<instance>@<key>, runner's
// runCgroup) that a daemon killed in their middle left, with what a run
// left running in them. The subtree is the state dir's, which the daemon
// holds alone (its lock); no other caller makes a Sandbox of it.
func (s *Sandbox) sweepRuns() {
	n, err := s.cg.RemoveMatching(func(_, instance string) bool { return strings.Contains(instance, "@") })
	if err != nil {
		s.opts.Log.Warn("remove the cgroups of runs a killed daemon left", "err", err)
	} else if n > 0 {
		s.opts.Log.Info("removed the cgroups of runs a killed daemon left", "groups", n)
	}
}

// Status says, one line per mechanism, what this host enforces and what it
// cannot.
func (s *Sandbox) Status() []string { return s.host().Lines() }

// host is what the sandbox enforces, as a Host.
func (s *Sandbox) host() Host {
	h := Host{ABI: s.abi, Root: s.root, CgroupErr: s.cgErr, UserPrefix: s.users.prefix()}
	if s.cg != nil {
		h.Cgroup, h.Controllers, h.CgroupDir, h.CgroupNote = s.cg.Mode(), s.cg.Controllers(), s.cg.Dir(), s.cg.Note()
	}
	return h
}

// Unenforced lists what of the limits and grants this host cannot enforce.
func (s *Sandbox) Unenforced(l Limits, g perms.Grants) []string { return s.host().Unenforced(l, g) }

// systemRO are the paths a program needs to run, read-only; the ones that
// may be missing are skipped.
var systemRO = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt",
	"/proc", "/sys", "/run", "/dev/random", "/dev/urandom", "/var/lib/ca-certificates"}

// systemRW are devices and folders every program may write.
var systemRW = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/pts", "/dev/shm"}

// Start is one prepared, confined start: fork Path with Argv, Env and
// Files (fd 3 onward), then call Started.
type Start struct {
	Path  string
	Argv  []string
	Env   []string
	Files []*os.File
	// Group is the instance's cgroup (nil without cgroups).
	Group *cgroup.Group
	// Summary is what the instance may do, in one line.
	Summary string

	report  *os.File
	oomBase uint64
}

// Prepare makes the instance's cgroup, resolves its user, hands the
// instance directory to that user and builds the shim's policy.
func (s *Sandbox) Prepare(req Request) (*Start, error) {
	grants, problems := perms.Parse(req.Permissions)
	if len(problems) > 0 {
		s.opts.Log.Warn("permissions not understood", "plug", req.Plug, "problems", strings.Join(problems, "; "))
	}
	p := Policy{Path: req.Path, Argv: req.Argv, Landlock: !req.NoLandlock && s.abi > 0, NoNewPrivs: true}

	// Credentials.
	cred, switchUser, err := s.credential(req)
	if err != nil {
		return nil, err
	}
	var groups []uint32
	for _, g := range req.Groups {
		gid, err := lookupGroup(g)
		if err != nil {
			return nil, err
		}
		groups = appendNew(groups, gid)
	}
	for _, g := range grants.Groups {
		if gid, err := lookupGroup(g); err == nil { // implied by a permission: skipped where the host lacks it
			groups = appendNew(groups, gid)
		}
	}
	if switchUser || (s.root && len(groups) > 0) {
		p.SwitchUser, p.UID, p.GID, p.Groups = true, cred.UID, cred.GID, groups
	}
	if switchUser {
		if err := s.handOver(req, cred); err != nil {
			return nil, err
		}
	}
	env := req.Env
	if p.SwitchUser {
		path := userPath(envPath(env), p.UID, p.GID, p.Groups)
		env = withPath(env, path)
		if len(req.Argv) > 0 && !strings.Contains(req.Argv[0], "/") && !searchable(filepath.Dir(req.Path), p.UID, p.GID, p.Groups) {
			if found, ok := lookUserPath(req.Argv[0], path, p.UID, p.GID, p.Groups); ok {
				p.Path, req.Path = found, found
			}
		}
	}

	// Filesystem and network.
	p.ReadOnly = append([]string{req.Dir, req.Path}, s.opts.ReadOnly...)
	p.ReadOnlyOptional = slices.Clone(systemRO)
	p.ReadWrite = append([]string{req.InstanceDir}, systemRW...)
	if setupDirOf(req) != "" {
		p.ReadWrite = append(p.ReadWrite, req.SetupDir)
	}
	p.ReadOnly = append(p.ReadOnly, grants.Read...)
	for _, pattern := range grants.Devices {
		matches, _ := filepath.Glob(pattern)
		p.Devices = append(p.Devices, matches...)
	}
	for _, w := range grants.Write {
		if strings.HasPrefix(w, "/dev/") {
			p.Devices = append(p.Devices, w)
		} else {
			p.ReadWrite = append(p.ReadWrite, w)
		}
	}
	if p.Landlock && s.abi >= 4 && !grants.AnyNetwork {
		p.RestrictNet = true
		p.Connect = slices.Clone(grants.Connect)
		if req.BrokerPort != 0 {
			p.Connect = appendNew(p.Connect, req.BrokerPort)
		}
		p.Bind = slices.Clone(grants.Bind)
	}

	// Rlimits, from the first instruction on.
	for _, rl := range []struct {
		res int
		val uint64
	}{{unix.RLIMIT_NOFILE, req.Limits.NoFile}, {unix.RLIMIT_AS, req.Limits.AddrSpace}, {unix.RLIMIT_NPROC, req.Limits.NProc}} {
		if rl.val > 0 {
			p.Rlimits = append(p.Rlimits, Rlimit{Resource: rl.res, Value: rl.val})
		}
	}

	st := &Start{Path: s.opts.Shim, Argv: append([]string{ShimArg0}, req.Argv...)}
	if s.cg != nil {
		g, err := s.cg.Group(req.Plug, req.Instance, cgroup.Limits{Memory: req.Limits.Memory, CPU: req.Limits.CPU, PIDs: req.Limits.PIDs})
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.groups[req.Plug+"/"+req.Instance] = g
		s.mu.Unlock()
		st.Group, st.oomBase = g, g.OOMKills()
		p.Cgroups = g.ProcsFiles()
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("sandbox policy: %w", err)
	}
	// The one policy is this one: a PLUGS_SANDBOX_POLICY already in env (a
	// plug's env, which spec refuses, or an inherited one) would be the
	// first the shim's LookupEnv finds, and would confine nothing.
	st.Env = append(slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, policyEnv+"=") }),
		policyEnv+"="+string(raw))
	if !slices.Contains(grants.Write, "/tmp") && p.Landlock {
		// /tmp is not writable: temporary files go to the instance directory.
		st.Env = slices.DeleteFunc(st.Env, func(kv string) bool { return strings.HasPrefix(kv, "TMPDIR=") })
		st.Env = append(st.Env, "TMPDIR="+req.InstanceDir)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox report pipe: %w", err)
	}
	st.report, st.Files = r, []*os.File{w}
	st.Summary = s.summary(p, grants, cred, switchUser, req)
	return st, nil
}

// credential decides who the instance runs as. As root: the plug's user,
// root only when it says user = "root", else the plug's own unprivileged
// user. Otherwise the daemon's own user (a different one is an error).
func (s *Sandbox) credential(req Request) (Credential, bool, error) {
	if !s.root {
		if req.User != "" {
			if c, err := lookupUser(req.User); err != nil || c.UID != uint32(os.Geteuid()) {
				return Credential{}, false, fmt.Errorf("run as %s: needs root", req.User)
			}
		}
		return Credential{UID: uint32(os.Geteuid()), GID: uint32(os.Getegid())}, false, nil
	}
	var c Credential
	var err error
	switch req.User {
	case "root", "0":
		c = Credential{Name: "root"}
	case "":
		c, err = s.users.Ensure(req.Plug)
	default:
		c, err = lookupUser(req.User)
	}
	if err != nil {
		return Credential{}, false, err
	}
	if req.Group != "" {
		if c.GID, err = lookupGroup(req.Group); err != nil {
			return Credential{}, false, err
		}
	}
	return c, c.UID != 0 || c.GID != 0, nil
}

// handOver gives the instance directory and its config.json to the
// instance's user, and makes the state directory's folders on the way to
// it traversable.
func (s *Sandbox) handOver(req Request, c Credential) error {
	if err := os.Lchown(req.InstanceDir, int(c.UID), int(c.GID)); err != nil {
		return fmt.Errorf("instance directory owner: %w", err)
	}
	cfg := filepath.Join(req.InstanceDir, "config.json")
	if err := os.Lchown(cfg, int(c.UID), int(c.GID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("config.json owner: %w", err)
	}
	targets := []string{req.InstanceDir, req.Dir}
	if dir := setupDirOf(req); dir != "" {
		// What the setup program saved there (as root) is the plugin's to
		// read, and its own to update: like the instance directory.
		if err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			st, err := os.Lstat(p)
			if err != nil {
				return err
			}
			if sys := st.Sys().(*syscall.Stat_t); sys.Uid == c.UID && sys.Gid == c.GID {
				return nil
			}
			return os.Lchown(p, int(c.UID), int(c.GID))
		}); err != nil {
			return fmt.Errorf("setup folder owner: %w", err)
		}
		targets = append(targets, dir)
	}
	for _, target := range targets {
		if err := s.traversable(target, c); err != nil {
			return err
		}
	}
	return nil
}

// setupDirOf is req's setup folder when it is a folder of its own (not a
// symlink), else "".
func setupDirOf(req Request) string {
	if req.SetupDir == "" {
		return ""
	}
	if fi, err := os.Lstat(req.SetupDir); err != nil || !fi.IsDir() {
		return ""
	}
	return req.SetupDir
}

// traversable makes every folder from the state directory down to target
// searchable by others (o+x only), and checks the folders above it.
func (s *Sandbox) traversable(target string, c Credential) error {
	state, _ := filepath.Abs(s.opts.StateDir)
	target, _ = filepath.Abs(target)
	for dir := filepath.Dir(target); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		ok := fi.Mode()&0o001 != 0 || st.Uid == c.UID && fi.Mode()&0o100 != 0 || st.Gid == c.GID && fi.Mode()&0o010 != 0
		if !ok {
			inside := s.opts.StateDir != "" && (dir == state || strings.HasPrefix(dir, state+"/"))
			if !inside {
				return fmt.Errorf("%s cannot reach %s: %s is not searchable by others (chmod o+x %s, or run the plug with user = \"root\")", c.Name, target, dir, dir)
			}
			if err := os.Chmod(dir, fi.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("make %s searchable: %w", dir, err)
			}
		}
		if dir == "/" || dir == "." {
			return nil
		}
	}
}

// summary is the one line of what the instance may do.
func (s *Sandbox) summary(p Policy, g perms.Grants, c Credential, switched bool, req Request) string {
	var parts []string
	who := c.Name
	if !switched && !s.root {
		who = "uid " + strconv.Itoa(os.Geteuid())
	} else if who == "" {
		who = "uid " + strconv.Itoa(int(c.UID))
	}
	parts = append(parts, "as "+who)
	if len(req.Groups) > 0 {
		parts[0] += " (+" + strings.Join(req.Groups, ",") + ")"
	}
	parts = append(parts, Describe(req.NoLandlock, g, req.Limits)...)
	if u := s.Unenforced(req.Limits, g); len(u) > 0 {
		parts = append(parts, "NOT enforced here: "+strings.Join(u, ", "))
	}
	return strings.Join(parts, "; ")
}

// Describe says in short phrases what grants and limits allow: the line
// `plugs validate` prints per plug.
func Describe(noLandlock bool, g perms.Grants, l Limits) []string {
	var parts []string
	if noLandlock {
		parts = append(parts, "sandbox off: any file, any network")
	} else {
		fsPart := "read plugin + system, write instance dir"
		if len(g.Read) > 0 {
			fsPart += ", read " + strings.Join(g.Read, " ")
		}
		if len(g.Write) > 0 {
			fsPart += ", write " + strings.Join(g.Write, " ")
		}
		if len(g.Devices) > 0 {
			fsPart += ", devices " + strings.Join(g.Devices, " ")
		}
		parts = append(parts, fsPart)
		switch {
		case g.AnyNetwork:
			parts = append(parts, "any network")
		default:
			n := "network: broker"
			if len(g.Connect) > 0 {
				n += ", connect tcp " + joinPorts(g.Connect)
			}
			if len(g.Bind) > 0 {
				n += ", listen tcp " + joinPorts(g.Bind)
			}
			parts = append(parts, n)
		}
	}
	var lim []string
	if l.Memory > 0 {
		lim = append(lim, "memory "+FormatBytes(l.Memory))
	}
	if l.CPU > 0 {
		lim = append(lim, "cpu "+strconv.FormatFloat(l.CPU, 'g', -1, 64))
	}
	if l.PIDs > 0 {
		lim = append(lim, "pids "+strconv.FormatUint(l.PIDs, 10))
	}
	if len(lim) > 0 {
		parts = append(parts, strings.Join(lim, ", "))
	}
	return parts
}

func joinPorts(ps []uint16) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(int(p))
	}
	return strings.Join(s, ",")
}

// FormatBytes renders n in the largest binary unit that divides it.
func FormatBytes(n uint64) string {
	for _, u := range []struct {
		name string
		size uint64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatUint(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatUint(n, 10) + "B"
}

// Started is called after the fork of st (err is the fork's error). It
// waits for the shim to exec the plugin, and returns the shim's error when
// it could not (the process has then exited, status 127).
func (st *Start) Started(forkErr error) error {
	for _, f := range st.Files {
		f.Close()
	}
	defer st.report.Close()
	if forkErr != nil {
		return forkErr
	}
	msg, err := io.ReadAll(io.LimitReader(st.report, 4096))
	if err != nil {
		return fmt.Errorf("sandbox report: %w", err)
	}
	if len(msg) > 0 {
		return errors.New(string(msg))
	}
	return nil
}

// OOMKilled says whether the kernel killed a process of the instance at its
// memory limit since Prepare.
func (st *Start) OOMKilled() bool {
	return st.Group != nil && st.Group.OOMKills() > st.oomBase
}

// Kill kills every process of the instance's cgroup (a no-op without one).
func (st *Start) Kill() error {
	if st.Group == nil {
		return nil
	}
	return st.Group.Kill()
}

// Usage is the instance's CPU time and memory from its cgroup; ok is false
// without one.
func (st *Start) Usage() (cpu time.Duration, memory uint64, ok bool) {
	if st.Group == nil {
		return 0, 0, false
	}
	cpu, memory, err := st.Group.Usage()
	return cpu, memory, err == nil
}

// Release kills what is left of an instance and removes its cgroup: call
// it when the instance is stopped for good.
func (s *Sandbox) Release(plug, instance string) error {
	s.mu.Lock()
	g := s.groups[plug+"/"+instance]
	delete(s.groups, plug+"/"+instance)
	s.mu.Unlock()
	if g == nil {
		return nil
	}
	return g.Remove()
}

// Close removes the daemon's cgroup subtree, once every instance is released.
func (s *Sandbox) Close() error {
	if s.cg == nil {
		return nil
	}
	return s.cg.Remove()
}

func appendNew[T comparable](s []T, v T) []T {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
