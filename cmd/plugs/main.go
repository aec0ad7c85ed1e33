// Command plugs is the CLI and daemon of plugs. It holds flags, viper and
// output formatting only; every decision lives in the packages it calls.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
