package daemon

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/internal/testplugin"
)

// TestMain adds a mode to the fake plugin: dial STATEDIR, a client that
// asks the daemon of STATEDIR for its status, prints the outcome and exits
// (see TestSocketRefusesOtherUsers, which runs it as another user).
func TestMain(m *testing.M) {
	testplugin.Main(m, map[string]testplugin.Mode{"dial": func(args []string) int { return dialChild(args[0]) }})
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
