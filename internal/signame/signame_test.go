package signame_test

import (
	"syscall"
	"testing"

	"github.com/plugs-dev/plugs/internal/signame"
)

func TestSignals(t *testing.T) {
	for _, in := range []string{"term", "TERM", " SIGTERM ", ""} {
		if s, err := signame.Parse(in); err != nil || s != syscall.SIGTERM {
			t.Errorf("Parse(%q) = %v, %v", in, s, err)
		}
	}
	if s, err := signame.Parse("usr1"); err != nil || s != syscall.SIGUSR1 {
		t.Errorf("Parse(usr1) = %v, %v", s, err)
	}
	if _, err := signame.Parse("SIGNOPE"); err == nil {
		t.Error("Parse(SIGNOPE) accepted")
	}
	for _, n := range signame.Stop {
		s, err := signame.Parse(n)
		if err != nil || signame.Name(s) != n {
			t.Errorf("stop signal %s: %v %v, name %s", n, s, err, signame.Name(s))
		}
	}
	if signame.Name(syscall.SIGKILL) != "SIGKILL" || signame.Name(syscall.Signal(200)) != "signal 200" {
		t.Error("Name")
	}
}
