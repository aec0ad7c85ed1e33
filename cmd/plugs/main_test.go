package main

import (
	"github.com/plugs-dev/plugs/sandbox"
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	sandbox.MaybeExec()
	testscript.Main(m, map[string]func(){
		"plugs": func() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI sessions in testdata/script/*.txtar against the
// real plugs binary (this test binary, re-executed).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup:               scriptSetup,
	})
}
