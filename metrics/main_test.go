package metrics

import (
	"testing"

	"github.com/plugs-dev/plugs/internal/testplugin"
)

// TestMain makes the test binary an instance process when a test starts
// it as one (testplugin's hold mode: N MiB resident, "ready", then wait to
// be killed).
func TestMain(m *testing.M) { testplugin.Main(m, nil) }
