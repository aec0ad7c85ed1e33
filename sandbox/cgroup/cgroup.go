package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Limits are an instance's cgroup limits; zero means unset.
type Limits struct {
	Memory uint64  // bytes
	CPU    float64 // cores, e.g. 0.5
	PIDs   uint64
}

// Mode says which cgroup version a Root uses.
type Mode string

// Cgroup versions.
const (
	V1 Mode = "v1"
	V2 Mode = "v2"
)

// Root is the cgroup subtree of one daemon: <own cgroup>/<name> in every
// hierarchy it uses.
type Root struct {
	mode Mode
	// dirs maps each v1 controller (or "" for v2) to the subtree's
	// directory in that hierarchy.
	dirs map[string]string
	// controllers are the limits this root can enforce: "memory",
	// "pids", "cpu".
	controllers []string
	note        string
}

// Mode is the cgroup version in use.
func (r *Root) Mode() Mode { return r.mode }

// Controllers lists the limits that are enforced ("memory", "pids", "cpu").
func (r *Root) Controllers() []string { return slices.Clone(r.controllers) }

// Note says why a controller is missing, or "".
func (r *Root) Note() string { return r.note }

// Dir is the subtree's directory (v2) or its memory one (v1, or the first).
func (r *Root) Dir() string {
	if d, ok := r.dirs[""]; ok {
		return d
	}
	for _, c := range []string{"memory", "pids", "cpu", "cpuacct", "freezer"} {
		if d, ok := r.dirs[c]; ok {
			return d
		}
	}
	return ""
}

// wanted are the limit controllers, in the order they are reported.
var wanted = []string{"memory", "pids", "cpu"}

// mount is one cgroup filesystem of /proc/self/mountinfo.
type mount struct {
	dir, root string
	v2        bool
	opts      []string // v1 controllers of the mount
}

// Open finds the cgroup hierarchies of this machine and makes the subtree
// name below the daemon's own cgroup. It prefers a pure v2 host; on a
// hybrid host (v1 controllers and a v2 mount without them) it uses the v1
// controllers; with no limit controller it still uses v2 to kill.
func Open(name string) (*Root, error) {
	v2dir, v1dirs, err := locate()
	if err != nil {
		return nil, err
	}
	if v2dir != "" {
		return OpenV2(v2dir, name)
	}
	return OpenV1(v1dirs, name)
}

// locate finds the daemon's own cgroup: its v2 directory when the host is
// pure v2 (or has no v1 controller), else its directory per v1 controller.
func locate() (v2dir string, v1dirs map[string]string, err error) {
	mounts, err := readMounts("/proc/self/mountinfo")
	if err != nil {
		return "", nil, err
	}
	own, err := readOwn("/proc/self/cgroup")
	if err != nil {
		return "", nil, err
	}
	var v2 *mount
	v1 := map[string]*mount{}
	for i := range mounts {
		m := &mounts[i]
		if m.v2 {
			if v2 == nil || m.dir == "/sys/fs/cgroup" {
				v2 = m
			}
			continue
		}
		for _, c := range m.opts {
			if slices.Contains([]string{"memory", "pids", "cpu", "cpuacct", "freezer"}, c) {
				v1[c] = m
			}
		}
	}
	if v2 != nil && (len(v1) == 0 || v2.dir == "/sys/fs/cgroup") {
		return filepath.Join(v2.dir, strings.TrimPrefix(own[""], v2.root)), nil, nil
	}
	if len(v1) == 0 {
		return "", nil, errors.New("no cgroup hierarchy is mounted")
	}
	v1dirs = map[string]string{}
	for c, m := range v1 {
		v1dirs[c] = filepath.Join(m.dir, strings.TrimPrefix(own[c], m.root))
	}
	return "", v1dirs, nil
}

// Probe says, without changing anything, which cgroup version Open would
// use and which limit controllers it would find (v2: offered to the
// daemon's cgroup; delegation may still fail, see OpenV2).
func Probe() (Mode, []string, error) {
	v2dir, v1dirs, err := locate()
	if err != nil {
		return "", nil, err
	}
	var cs []string
	if v2dir != "" {
		if err := unix.Access(v2dir, unix.W_OK); err != nil {
			// What OpenV2 would fail on: a daemon of this user could make
			// no cgroup (a non-root user without delegation).
			return "", nil, fmt.Errorf("cgroup %s is not writable by this user (%v): delegate it (systemd Delegate=yes) or run as root", v2dir, err)
		}
		avail := readWords(filepath.Join(v2dir, "cgroup.controllers"))
		for _, c := range wanted {
			if slices.Contains(avail, c) {
				cs = append(cs, c)
			}
		}
		return V2, cs, nil
	}
	var denied []string
	for _, c := range wanted {
		if dir, ok := v1dirs[c]; ok {
			if err := unix.Access(dir, unix.W_OK); err != nil {
				denied = append(denied, dir)
				continue
			}
			cs = append(cs, c)
		}
	}
	if len(cs) == 0 && len(denied) > 0 {
		return "", nil, fmt.Errorf("cgroups %s are not writable by this user: delegate them or run as root", strings.Join(denied, ", "))
	}
	return V1, cs, nil
}

// OpenV1 makes the subtree name below the given cgroup of each v1
// controller (controller → the daemon's cgroup directory in its mount).
func OpenV1(parents map[string]string, name string) (*Root, error) {
	r := &Root{mode: V1, dirs: map[string]string{}}
	for c, parent := range parents {
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("cgroup %s: %w", c, err)
		}
		r.dirs[c] = dir
	}
	var missing []string
	for _, c := range wanted {
		if _, ok := r.dirs[c]; ok {
			r.controllers = append(r.controllers, c)
		} else {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		r.note = "no v1 " + strings.Join(missing, ", ") + " controller mounted"
	}
	return r, nil
}

// OpenV2 makes the subtree name below parent, a cgroup v2 directory (the
// daemon's own), with every limit controller parent offers enabled. When
// parent holds processes the daemon alone, it first moves itself into
// parent/supervisor (v2 lets only leaves hold processes).
func OpenV2(parent, name string) (*Root, error) {
	r := &Root{mode: V2, dirs: map[string]string{"": filepath.Join(parent, name)}}
	avail := readWords(filepath.Join(parent, "cgroup.controllers"))
	var enable, missing []string
	for _, c := range wanted {
		if slices.Contains(avail, c) {
			enable = append(enable, c)
		} else {
			missing = append(missing, c)
		}
	}
	if len(enable) > 0 {
		if err := enableControllers(parent, enable); err != nil {
			missing, enable = append(missing, enable...), nil
			r.note = err.Error()
		}
	}
	if err := os.Mkdir(r.dirs[""], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	if len(enable) > 0 {
		if err := enableControllers(r.dirs[""], enable); err != nil {
			return nil, err
		}
	}
	r.controllers = enable
	if len(missing) > 0 && r.note == "" {
		slices.Sort(missing)
		r.note = fmt.Sprintf("%s offers no %s controller", parent, strings.Join(missing, ", "))
	}
	return r, nil
}

// enableControllers writes +c for each controller to dir's
// cgroup.subtree_control. v2 refuses it while dir holds processes (unless
// it is the root): when they are this process alone, it moves into a leaf.
func enableControllers(dir string, cs []string) error {
	ctl := filepath.Join(dir, "cgroup.subtree_control")
	have := readWords(ctl)
	var add []string
	for _, c := range cs {
		if !slices.Contains(have, c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	err := os.WriteFile(ctl, []byte(strings.Join(add, " ")), 0)
	if errors.Is(err, unix.EBUSY) {
		procs := readWords(filepath.Join(dir, "cgroup.procs"))
		if len(procs) != 1 || procs[0] != strconv.Itoa(os.Getpid()) {
			return fmt.Errorf("%s holds other processes than plugs, so its controllers cannot be delegated (run plugs in a cgroup of its own: systemd Delegate=yes)", dir)
		}
		leaf := filepath.Join(dir, "supervisor")
		if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("cgroup: %w", err)
		}
		if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return fmt.Errorf("move plugs into %s: %w", leaf, err)
		}
		err = os.WriteFile(ctl, []byte(strings.Join(add, " ")), 0)
	}
	if err != nil {
		return fmt.Errorf("enable cgroup controllers in %s: %w", dir, err)
	}
	return nil
}

// Group is one instance's cgroup.
type Group struct {
	mode Mode
	dirs map[string]string // as Root.dirs
}

// Group makes (or reuses) the cgroup plug/instance and sets its limits.
// Processes left inside by a killed predecessor are killed first.
func (r *Root) Group(plug, instance string, l Limits) (*Group, error) {
	g := &Group{mode: r.mode, dirs: map[string]string{}}
	for c, base := range r.dirs {
		dir, err := r.mkGroup(base, plug, instance)
		if err != nil {
			return nil, err
		}
		g.dirs[c] = dir
	}
	if len(g.Pids()) > 0 {
		if err := g.Kill(); err != nil {
			return nil, err
		}
	}
	if err := g.setLimits(r.controllers, l); err != nil {
		return nil, err
	}
	return g, nil
}

// mkGroupRounds bounds mkGroup's retries.
const mkGroupRounds = 8

// mkGroup makes base/plug/instance. The Remove of the plug's last group
// removes base/plug: one that runs between the two Mkdirs (a one-shot
// run's cgroup ends while another of the plug is made) leaves no parent
// for the second, which then makes it again.
func (r *Root) mkGroup(base, plug, instance string) (string, error) {
	pdir := filepath.Join(base, plug)
	dir := filepath.Join(pdir, instance)
	for round := 1; ; round++ {
		if err := os.Mkdir(pdir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("cgroup %s: %w", plug, err)
		}
		if r.mode == V2 && len(r.controllers) > 0 {
			if err := enableControllers(pdir, r.controllers); err != nil {
				if errors.Is(err, fs.ErrNotExist) && round < mkGroupRounds {
					continue
				}
				return "", err
			}
		}
		err := os.Mkdir(dir, 0o755)
		switch {
		case err == nil || errors.Is(err, fs.ErrExist):
			return dir, nil
		case errors.Is(err, fs.ErrNotExist) && round < mkGroupRounds:
			continue
		}
		return "", fmt.Errorf("cgroup %s/%s: %w", plug, instance, err)
	}
}

func (g *Group) file(controller, name string) string {
	if g.mode == V2 {
		return filepath.Join(g.dirs[""], name)
	}
	d, ok := g.dirs[controller]
	if !ok {
		return ""
	}
	return filepath.Join(d, name)
}

func (g *Group) setLimits(controllers []string, l Limits) error {
	type setting struct{ controller, file, value string }
	var set []setting
	mem, pids, cpu := "max", "max", "max 100000"
	if l.Memory > 0 {
		mem = strconv.FormatUint(l.Memory, 10)
	}
	if l.PIDs > 0 {
		pids = strconv.FormatUint(l.PIDs, 10)
	}
	quota := int64(-1)
	if l.CPU > 0 {
		quota = max(int64(l.CPU*100000), 1000)
		cpu = fmt.Sprintf("%d 100000", quota)
	}
	if g.mode == V2 {
		set = []setting{
			{"memory", "memory.max", mem}, {"memory", "memory.swap.max", map[bool]string{true: "0", false: "max"}[l.Memory > 0]},
			{"memory", "memory.oom.group", "1"}, {"pids", "pids.max", pids}, {"cpu", "cpu.max", cpu},
		}
	} else {
		v1mem := "-1"
		if l.Memory > 0 {
			v1mem = mem
		}
		set = []setting{
			{"memory", "memory.limit_in_bytes", v1mem},
			{"pids", "pids.max", pids},
			{"cpu", "cpu.cfs_period_us", "100000"}, {"cpu", "cpu.cfs_quota_us", strconv.FormatInt(quota, 10)},
		}
	}
	for _, s := range set {
		if !slices.Contains(controllers, s.controller) {
			continue
		}
		f := g.file(s.controller, s.file)
		if f == "" {
			continue
		}
		if err := os.WriteFile(f, []byte(s.value), 0); err != nil {
			if errors.Is(err, fs.ErrNotExist) && s.file == "memory.swap.max" {
				continue // no swap accounting on this kernel
			}
			return fmt.Errorf("cgroup %s = %s: %w", s.file, s.value, err)
		}
	}
	return nil
}

// ProcsFiles are the cgroup.procs files a process writes its pid to, to
// join the group in every hierarchy.
func (g *Group) ProcsFiles() []string {
	var out []string
	for _, d := range g.dirs {
		out = append(out, filepath.Join(d, "cgroup.procs"))
	}
	slices.Sort(out)
	return out
}

// Dirs lists the group's directories (one per v1 hierarchy).
func (g *Group) Dirs() []string {
	var out []string
	for _, d := range g.dirs {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// Pids lists the processes in the group.
func (g *Group) Pids() []int {
	seen := map[int]bool{}
	var out []int
	for _, d := range g.dirs {
		for _, w := range readWords(filepath.Join(d, "cgroup.procs")) {
			if pid, err := strconv.Atoi(w); err == nil && !seen[pid] {
				seen[pid] = true
				out = append(out, pid)
			}
		}
	}
	slices.Sort(out)
	return out
}

// killRounds bounds Kill's loop where the kernel has no cgroup.kill.
const killRounds = 100

// Kill sends SIGKILL to every process in the group, including those that
// left the instance's process group (setsid, double fork), and returns
// once the group is empty (zombies aside) or after a bounded number of
// rounds.
func (g *Group) Kill() error {
	if g.mode == V2 {
		err := os.WriteFile(g.file("", "cgroup.kill"), []byte("1"), 0)
		if err == nil {
			return g.waitEmpty()
		}
	}
	frozen := false
	if f := g.file("freezer", "freezer.state"); g.mode == V1 && f != "" {
		frozen = os.WriteFile(f, []byte("FROZEN"), 0) == nil
		defer func() {
			if frozen {
				_ = os.WriteFile(f, []byte("THAWED"), 0)
			}
		}()
	} else if g.mode == V2 {
		frozen = os.WriteFile(g.file("", "cgroup.freeze"), []byte("1"), 0) == nil
		defer func() {
			if frozen {
				_ = os.WriteFile(g.file("", "cgroup.freeze"), []byte("0"), 0)
			}
		}()
	}
	for range killRounds {
		pids := g.livePids()
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			killIfMember(pid, g)
		}
		if frozen {
			// A frozen task receives SIGKILL only once thawed.
			g.thaw()
			frozen = false
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("cgroup %s: processes left after %d kill rounds", g.Dirs()[0], killRounds)
}

func (g *Group) thaw() {
	if g.mode == V1 {
		_ = os.WriteFile(g.file("freezer", "freezer.state"), []byte("THAWED"), 0)
	} else {
		_ = os.WriteFile(g.file("", "cgroup.freeze"), []byte("0"), 0)
	}
}

// killIfMember kills pid through a pidfd after checking, with the pidfd
// open, that it is still in the group: a recycled pid is never signalled.
func killIfMember(pid int, g *Group) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if !slices.Contains(g.Pids(), pid) {
		return
	}
	_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
}

// livePids are the group's processes that are not zombies.
func (g *Group) livePids() []int {
	var out []int
	for _, pid := range g.Pids() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && b[i+2] == 'Z' {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// waitEmpty waits, bounded, until the group has no live process.
func (g *Group) waitEmpty() error {
	for range killRounds {
		if len(g.livePids()) == 0 {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("cgroup %s: processes left after kill", g.Dirs()[0])
}

// OOMKills is how many times the kernel's OOM killer killed a process of
// the group at its memory limit.
func (g *Group) OOMKills() uint64 {
	if g.mode == V2 {
		return readKey(g.file("", "memory.events"), "oom_kill")
	}
	if f := g.file("memory", "memory.oom_control"); f != "" {
		return readKey(f, "oom_kill")
	}
	return 0
}

// Usage is the group's CPU time and current memory (what its memory limit
// is checked against: resident memory plus page cache).
func (g *Group) Usage() (cpu time.Duration, memory uint64, err error) {
	if g.mode == V2 {
		cpu = time.Duration(readKey(g.file("", "cpu.stat"), "usage_usec")) * time.Microsecond
		memory, err = readUint(g.file("", "memory.current"))
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return cpu, memory, err
	}
	if f := g.file("cpuacct", "cpuacct.usage"); f != "" {
		ns, cerr := readUint(f)
		cpu, err = time.Duration(ns), cerr
	}
	if f := g.file("memory", "memory.usage_in_bytes"); f != "" {
		var merr error
		memory, merr = readUint(f)
		err = errors.Join(err, merr)
	}
	return cpu, memory, err
}

// Remove kills what is left in the group and removes its directories
// (and its plug's, once empty).
func (g *Group) Remove() error {
	err := g.Kill()
	for _, d := range g.dirs {
		var rerr error
		for range killRounds {
			rerr = os.Remove(d)
			if rerr == nil || errors.Is(rerr, fs.ErrNotExist) {
				rerr = nil
				break
			}
			time.Sleep(time.Millisecond)
		}
		err = errors.Join(err, rerr)
		_ = os.Remove(filepath.Dir(d)) // the plug's directory, when this was its last instance
	}
	return err
}

// RemoveMatching kills what is in every group of the subtree that drop
// accepts (by its plug and instance names), and removes the group: the
// one-shot runs' groups a daemon killed in their middle left behind (its
// next start sweeps them). It returns how many it removed.
func (r *Root) RemoveMatching(drop func(plug, instance string) bool) (int, error) {
	base := r.Dir()
	if base == "" {
		return 0, nil
	}
	plugs, err := os.ReadDir(base)
	if err != nil {
		return 0, err
	}
	n, errs := 0, []error(nil)
	for _, p := range plugs {
		if !p.IsDir() {
			continue
		}
		insts, err := os.ReadDir(filepath.Join(base, p.Name()))
		if err != nil {
			continue
		}
		for _, in := range insts {
			if !in.IsDir() || !drop(p.Name(), in.Name()) {
				continue
			}
			g := &Group{mode: r.mode, dirs: map[string]string{}}
			for c, b := range r.dirs {
				g.dirs[c] = filepath.Join(b, p.Name(), in.Name())
			}
			if err := g.Remove(); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

// Remove removes the daemon's subtree when it is empty.
func (r *Root) Remove() error {
	var err error
	for _, d := range r.dirs {
		if rerr := os.Remove(d); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

func readWords(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// readKey reads "key value" lines (memory.events, cpu.stat, memory.oom_control).
func readKey(path, key string) uint64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// readOwn parses /proc/self/cgroup: controller → path ("" for v2).
func readOwn(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, nil
}

// readMounts lists the cgroup filesystems of a mountinfo file.
func readMounts(path string) ([]mount, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []mount
	for line := range strings.SplitSeq(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		switch g[0] {
		case "cgroup2":
			out = append(out, mount{dir: f[4], root: f[3], v2: true})
		case "cgroup":
			out = append(out, mount{dir: f[4], root: f[3], opts: strings.Split(g[2], ",")})
		}
	}
	return out, nil
}
