package sandbox

import (
	"errors"
	"io/fs"
	"os"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// landlockConfig is the widest set of rights plugs handles: ABI 7's
// (filesystem, TCP bind/connect, signal and abstract-socket scopes). Newer
// kernels restrict more (UDP, pathname sockets) only once plugs knows the
// permissions to express them; older ones get the best-effort downgrade.
func landlockConfig(restrictNet bool) landlock.Config {
	c := landlock.V7.BestEffort()
	if !restrictNet {
		c.HandledAccessNet = 0
	}
	return c
}

// LandlockABI is the kernel's Landlock ABI version, 0 without Landlock.
func LandlockABI() int {
	v, err := llsys.LandlockGetABIVersion()
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// landlockRuleset builds the policy's ruleset; fd is -1 when there is
// nothing to enforce (Landlock off, or the kernel has none).
func (p *Policy) landlockRuleset() (fd int, flags uint32, err error) {
	if !p.Landlock {
		return -1, 0, nil
	}
	var rules []landlock.Rule
	add := func(paths []string, write, ioctl, optional bool) error {
		for _, path := range paths {
			fi, err := os.Stat(path)
			if err != nil {
				if optional || errors.Is(err, fs.ErrNotExist) && write {
					continue // a write grant on a path that does not exist (yet) grants nothing
				}
				return err
			}
			var r landlock.FSRule
			switch {
			case fi.IsDir() && write:
				r = landlock.RWDirs(path)
			case fi.IsDir():
				r = landlock.RODirs(path)
			case write:
				r = landlock.RWFiles(path)
			default:
				r = landlock.ROFiles(path)
			}
			if ioctl {
				r = r.WithIoctlDev()
			}
			rules = append(rules, r)
		}
		return nil
	}
	if err := errors.Join(add(p.ReadOnly, false, false, false), add(p.ReadOnlyOptional, false, false, true),
		add(p.ReadWrite, true, false, false), add(p.Devices, true, true, false)); err != nil {
		return -1, 0, err
	}
	if p.RestrictNet {
		for _, port := range p.Connect {
			rules = append(rules, landlock.ConnectTCP(port))
		}
		for _, port := range p.Bind {
			rules = append(rules, landlock.BindTCP(port))
		}
	}
	return landlockConfig(p.RestrictNet).NewRulesetFD(rules...)
}

// restrictSelf enforces the ruleset on the calling thread only: the shim
// execs from it right after, and the exec ends every other thread.
func restrictSelf(fd int, flags uint32) error {
	return llsys.LandlockRestrictSelf(fd, flags)
}
