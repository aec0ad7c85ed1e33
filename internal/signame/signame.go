// Package signame is the one home of signal names: how "term", "TERM" and
// "SIGTERM" are read, which signals a plugin may be stopped with, and the
// name recorded for a signal that ended a process ("SIGKILL"). spec checks
// stop_signal with it, the runner sends and records signals with it.
package signame

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Default is the stop signal of a plugin that names none.
const Default = "SIGTERM"

// Stop are the signals a plugin may ask to be stopped with.
var Stop = []string{"SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGKILL"}

// Normalize turns "term", "TERM" or " SIGTERM " into "SIGTERM".
func Normalize(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s != "" && !strings.HasPrefix(s, "SIG") {
		s = "SIG" + s
	}
	return s
}

// Parse returns the signal named name (any spelling Normalize reads);
// "" is Default. An unknown name returns Default and an error.
func Parse(name string) (syscall.Signal, error) {
	if name == "" {
		return syscall.SIGTERM, nil
	}
	if s := unix.SignalNum(Normalize(name)); s != 0 {
		return s, nil
	}
	return syscall.SIGTERM, fmt.Errorf("unknown signal %q", name)
}

// Name is the name of s, e.g. "SIGKILL"; "signal N" for one without a name.
func Name(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return "signal " + strconv.Itoa(int(s))
}
