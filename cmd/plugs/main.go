// Command plugs is the CLI and daemon of plugs. It holds flags, viper and
// output formatting only; every decision lives in the packages it calls.
package main

import (
	"os"

	"github.com/plugs-dev/plugs/sandbox"
)

func main() {
	sandbox.MaybeExec() // as the sandbox shim, this execs the plugin and never returns
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
