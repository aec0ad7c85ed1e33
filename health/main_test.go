package health

import (
	"testing"

	"github.com/plugs-dev/plugs/internal/testplugin"
)

// TestMain makes the test binary a notify program when a test starts it
// as one (testplugin's notify mode: go-systemd's daemon.SdNotify, as any
// systemd-ready Go program does, then sleep until killed).
func TestMain(m *testing.M) { testplugin.Main(m, nil) }
