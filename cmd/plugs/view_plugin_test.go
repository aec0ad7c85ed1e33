package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/api"
)

// TestPluginLines: plugs status PLUG shows what the plugin says of itself,
// one labelled line each, and leaves out what the manifest does not say.
func TestPluginLines(t *testing.T) {
	st := &api.Status{
		Instances: []api.InstanceStatus{{Plug: "steps", Instance: "default"}, {Plug: "other", Instance: "default"}},
		Plugins: []api.PluginInfo{
			{Plug: "steps", Name: "steps", Version: "1.4.0", Description: "Counts steps", Author: "Ward IT", License: "MIT", Exports: "omh:step-count:2.0", Instructions: "Pair the pedometer first."},
			{Plug: "other", Name: "other", Author: "someone else"},
		},
	}
	if err := onlyPlug(st, "steps"); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	writePluginLines(&b, st)
	out := b.String()
	for _, want := range []string{"Plugin:       steps 1.4.0", "Description:  Counts steps", "Author:       Ward IT", "License:      MIT", "Exports:      omh:step-count:2.0", "Instructions: Pair the pedometer first."} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "someone else") || strings.Contains(out, "UUID:") {
		t.Errorf("another plug's or an empty field's line shown:\n%s", out)
	}
}
