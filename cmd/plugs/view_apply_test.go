package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/api"
)

// TestApplyWarning: plugs apply shows a start that went ahead without its
// dependency ready as started, with why, and not as a failure.
func TestApplyWarning(t *testing.T) {
	r := &api.ApplyReport{
		Plan: api.PlanReport{Changes: []api.Change{
			{Plug: "db", Instance: "default", Action: api.ActionCreate, Reason: "instance added"},
			{Plug: "app", Instance: "default", Action: api.ActionCreate, Reason: "instance added", Warning: "dependency db not ready after 1m0s"},
		}, Start: 2},
		Started: 2,
	}
	var b bytes.Buffer
	writeApplyText(&b, r)
	out := b.String()
	for _, want := range []string{
		"+ db/default (instance added): started\n",
		"+ app/default (instance added): started (dependency db not ready after 1m0s)\n",
		"Apply complete! Resources: 2 started, 0 replaced, 0 stopped.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
