package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
)

// Users finds or creates the unprivileged user a plug runs as when it
// names none: "<prefix><plug>", a system user without a home or a login
// shell, created once with useradd and kept (so that files the plugin
// wrote keep their owner across restarts and upgrades).
type Users struct {
	Prefix string // default "plugs-"

	mu    sync.Mutex
	known map[string]Credential
}

// Credential is a resolved user: uid, primary gid and name.
type Credential struct {
	Name     string
	UID, GID uint32
}

// UserName is the name of the user a plug runs as: the prefix and the plug
// name, lower-cased; when that changed the name or made it longer than
// useradd accepts (32), a short hash of the plug name keeps it unique.
func (u *Users) UserName(plug string) string {
	prefix := u.prefix()
	clean := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return '-'
	}, plug)
	name := prefix + clean
	if clean == plug && len(name) <= 32 {
		return name
	}
	sum := sha256.Sum256([]byte(plug))
	h := hex.EncodeToString(sum[:4])
	if keep := 32 - len(prefix) - len(h) - 1; len(clean) > keep {
		clean = clean[:max(keep, 0)]
	}
	return prefix + clean + "-" + h
}

func (u *Users) prefix() string {
	if u.Prefix == "" {
		return "plugs-"
	}
	return u.Prefix
}

// Ensure returns the plug's user, creating it when it does not exist.
func (u *Users) Ensure(plug string) (Credential, error) {
	name := u.UserName(plug)
	u.mu.Lock()
	defer u.mu.Unlock()
	if c, ok := u.known[name]; ok {
		return c, nil
	}
	c, err := lookupUser(name)
	if err != nil {
		out, cerr := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
			"--comment", "plugs plugin "+plug, name).CombinedOutput()
		if cerr != nil {
			return Credential{}, fmt.Errorf("create user %s: %w: %s", name, cerr, strings.TrimSpace(string(out)))
		}
		if c, err = lookupUser(name); err != nil {
			return Credential{}, err
		}
	}
	if u.known == nil {
		u.known = map[string]Credential{}
	}
	u.known[name] = c
	return c, nil
}

func lookupUser(name string) (Credential, error) {
	pw, err := user.Lookup(name)
	if err != nil {
		return Credential{}, fmt.Errorf("user %s: %w", name, err)
	}
	uid, err1 := strconv.ParseUint(pw.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(pw.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return Credential{}, fmt.Errorf("user %s: uid %q gid %q", name, pw.Uid, pw.Gid)
	}
	return Credential{Name: name, UID: uint32(uid), GID: uint32(gid)}, nil
}

// lookupGroup resolves a supplementary group by name (or number).
func lookupGroup(name string) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("group %s: %w", name, err)
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("group %s: gid %q", name, g.Gid)
	}
	return uint32(n), nil
}
