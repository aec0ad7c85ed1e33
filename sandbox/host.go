package sandbox

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/plugs-dev/plugs/sandbox/cgroup"
	"github.com/plugs-dev/plugs/sandbox/perms"
)

// Host is what a host can enforce.
type Host struct {
	ABI         int // Landlock ABI, 0: none
	Root        bool
	Cgroup      cgroup.Mode // "" without cgroups
	Controllers []string    // enforced limits: memory, pids, cpu
	CgroupDir   string
	CgroupNote  string // why a controller is missing
	CgroupErr   string // why there are no cgroups
	UserPrefix  string
}

// ProbeHost finds what this host can enforce without changing anything
// (for plugs validate; the daemon's Sandbox knows for sure).
func ProbeHost() Host {
	h := Host{ABI: LandlockABI(), Root: os.Geteuid() == 0, UserPrefix: (&Users{}).prefix()}
	mode, cs, err := cgroup.Probe()
	if err != nil {
		h.CgroupErr = err.Error()
	} else {
		h.Cgroup, h.Controllers = mode, cs
	}
	return h
}

// Lines says, one line per mechanism, what the host enforces and what not.
func (h Host) Lines() []string {
	var out []string
	switch {
	case h.ABI == 0:
		out = append(out, "landlock: not available on this kernel: filesystem and network permissions are NOT enforced")
	case h.ABI < 4:
		out = append(out, fmt.Sprintf("landlock ABI %d: filesystem enforced; network NOT enforced (needs ABI 4, Linux 6.7)", h.ABI))
	default:
		out = append(out, fmt.Sprintf("landlock ABI %d: filesystem and TCP connect/bind enforced (UDP and Multipath TCP are not restricted)", h.ABI))
	}
	switch {
	case h.Cgroup == "":
		out = append(out, "cgroups: none ("+h.CgroupErr+"): memory, cpu and pids limits are NOT enforced; stop kills the process group and tracked children only")
	default:
		cs := strings.Join(h.Controllers, ", ")
		if cs == "" {
			cs = "no limit"
		}
		line := fmt.Sprintf("cgroups %s: %s enforced", h.Cgroup, cs)
		if h.CgroupDir != "" {
			line = fmt.Sprintf("cgroups %s at %s: %s enforced", h.Cgroup, h.CgroupDir, cs)
		}
		if h.CgroupNote != "" {
			line += "; " + h.CgroupNote
		}
		out = append(out, line)
	}
	if h.Root {
		out = append(out, "users: plugs without user run as "+h.UserPrefix+"<plug> (created on first start), never as root unless user = \"root\"")
	} else {
		out = append(out, "users: plugs is not root: every plug runs as uid "+strconv.Itoa(os.Geteuid()))
	}
	return out
}

// Unenforced lists what of the limits and grants this host cannot enforce.
func (h Host) Unenforced(l Limits, g perms.Grants) []string {
	var out []string
	if h.ABI == 0 {
		out = append(out, "filesystem", "network")
	} else if h.ABI < 4 && !g.AnyNetwork {
		out = append(out, "network")
	}
	for _, c := range []struct {
		name string
		set  bool
	}{{"memory", l.Memory > 0}, {"cpu", l.CPU > 0}, {"pids", l.PIDs > 0}} {
		if c.set && !slices.Contains(h.Controllers, c.name) {
			out = append(out, c.name+" limit")
		}
	}
	return out
}

// Plug is what plugs validate knows of a plug, for PlugLine.
type Plug struct {
	Name        string
	User        string
	Groups      []string
	Permissions []string // the manifest's, then the sandbox block's
	NoLandlock  bool
	Limits      Limits
}

// PlugLine is the one line of what a plug may do on this host, and what of
// it the host cannot enforce.
func (h Host) PlugLine(p Plug) string {
	g, problems := perms.Parse(p.Permissions)
	who := p.User
	switch {
	case !h.Root:
		who = "uid " + strconv.Itoa(os.Geteuid())
	case who == "":
		who = (&Users{Prefix: h.UserPrefix}).UserName(p.Name)
	}
	groups := append(slices.Clone(p.Groups), g.Groups...)
	if len(groups) > 0 {
		who += " (+" + strings.Join(groups, ",") + ")"
	}
	parts := append([]string{"as " + who}, Describe(p.NoLandlock, g, p.Limits)...)
	if len(problems) > 0 {
		parts = append(parts, fmt.Sprintf("%d unknown permission(s) ignored", len(problems)))
	}
	if u := h.Unenforced(p.Limits, g); len(u) > 0 && !(p.NoLandlock && len(u) == 2 && u[0] == "filesystem") {
		parts = append(parts, "NOT enforced here: "+strings.Join(u, ", "))
	}
	return p.Name + ": " + strings.Join(parts, "; ")
}
