package main

import "github.com/rogpeppe/go-internal/testscript"

// scriptSetup prepares the environment of every testscript. Commands may
// add conditions and helpers here as they need them.
func scriptSetup(env *testscript.Env) error {
	env.Setenv("HOME", env.WorkDir)
	return nil
}
