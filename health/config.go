package health

import (
	"time"

	"github.com/plugs-dev/plugs/instance"
)

// ID names an instance.
type ID = instance.ID

// Check types, as in plugin.hcl and plugs.hcl.
const (
	TypeNotify = "notify"
	TypeExec   = "exec"
	TypeHTTP   = "http"
	TypeTCP    = "tcp"
	TypeData   = "data"
)

// Check is one check of an instance: a spec.Check without source ranges.
type Check struct {
	Name     string
	Type     string
	Interval time.Duration // exec, http, tcp: between probes
	Timeout  time.Duration // exec, http, tcp: one probe; notify: READY=1 after a start (0: none)
	Failures int           // consecutive failures that make the check fail

	Command    []string
	URL        string
	ExpectBody string
	Address    string
	Within     time.Duration // data
	Watchdog   time.Duration // notify
}

// Config is the health configuration of one instance.
type Config struct {
	Checks []Check
	// RestartLimit > 0 restarts the instance after that many consecutive
	// failures of one check, not counting results in the first
	// RestartGrace after its start.
	RestartLimit int
	RestartGrace time.Duration

	// Dir and Env are where and with what environment exec checks run: the
	// plugin directory and the instance's environment ("K=V").
	Dir string
	Env []string

	// Secrets are values (secret params, the broker password) that must
	// never show: check outputs are redacted of them before being kept.
	Secrets []string
}

// HasType says whether c has a check of type t.
func (c Config) HasType(t string) bool {
	for _, ch := range c.Checks {
		if ch.Type == t {
			return true
		}
	}
	return false
}

// Watchdog is the shortest watchdog interval of c's notify checks; 0 none.
func (c Config) Watchdog() time.Duration {
	var w time.Duration
	for _, ch := range c.Checks {
		if ch.Type == TypeNotify && ch.Watchdog > 0 && (w == 0 || ch.Watchdog < w) {
			w = ch.Watchdog
		}
	}
	return w
}
