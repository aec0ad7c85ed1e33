package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/plugs-dev/plugs/api"
)

// dialChildEnv makes the test binary a client that asks the daemon of the
// state directory it names for its status, prints the outcome and exits
// (see TestSocketRefusesOtherUsers, which runs it as another user).
const dialChildEnv = "PLUGS_DAEMON_TEST_DIAL"

func TestMain(m *testing.M) {
	if dir := os.Getenv(dialChildEnv); dir != "" {
		os.Exit(dialChild(dir))
	}
	goleak.VerifyTestMain(m)
}

func dialChild(stateDir string) int {
	c, err := api.Dial(stateDir)
	if err == nil {
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = c.Status(ctx)
	}
	switch {
	case err == nil:
		fmt.Println("status: ok")
	case errors.Is(err, api.ErrPermission):
		fmt.Println("permission:", err)
	default:
		fmt.Println("other:", err)
	}
	return 0
}
