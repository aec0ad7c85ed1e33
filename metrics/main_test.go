package metrics

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

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

// runChild is an instance process: "burn:N" holds N MiB resident and spins
// on the CPU until it is killed; "sleep" just waits.
func runChild(mode string) {
	if mib, ok := strings.CutPrefix(mode, "burn:"); ok {
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
		x := 0
		for {
			x += int(ballast[x%len(ballast)])
		}
	}
	select {}
}
