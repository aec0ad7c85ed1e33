package metrics

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// childEnv makes the test binary act as an instance process (see TestMain).
const childEnv = "PLUGS_METRICS_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		runChild(mode)
		return
	}
	goleak.VerifyTestMain(m)
}

// runChild is an instance process: "hold:N" makes N MiB resident (which
// costs some CPU time), says "ready" and waits to be killed.
func runChild(mode string) {
	if mib, ok := strings.CutPrefix(mode, "hold:"); ok {
		n, err := strconv.Atoi(mib)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ballast := make([]byte, n<<20)
		for i := range ballast {
			ballast[i] = byte(i) // touch every page so it is resident
		}
		fmt.Println("ready")
		time.Sleep(time.Hour)
		runtime.KeepAlive(ballast)
		return
	}
	fmt.Fprintln(os.Stderr, "unknown child mode", mode)
	os.Exit(2)
}
