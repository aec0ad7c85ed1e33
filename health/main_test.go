package health

import (
	"os"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/goleak"
)

// childEnv makes the test binary a notify program (Nomad's testtask): it
// sends $HEALTH_TEST_CHILD with go-systemd's daemon.SdNotify, as any
// systemd-ready Go program does, then sleeps until killed.
const childEnv = "HEALTH_TEST_CHILD"

func TestMain(m *testing.M) {
	if state := os.Getenv(childEnv); state != "" {
		if ok, err := daemon.SdNotify(false, state); !ok || err != nil {
			os.Exit(3)
		}
		time.Sleep(time.Hour)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}
