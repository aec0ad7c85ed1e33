package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/sandbox"
	"github.com/plugs-dev/plugs/spec"
)

// onlyPlug keeps the instances of plug in st.
func onlyPlug(st *api.Status, plug string) error {
	st.Instances = slices.DeleteFunc(st.Instances, func(i api.InstanceStatus) bool { return i.Plug != plug })
	st.Plugins = slices.DeleteFunc(st.Plugins, func(p api.PluginInfo) bool { return p.Plug != plug })
	st.Rollouts = slices.DeleteFunc(st.Rollouts, func(r api.RolloutStatus) bool { return r.Plug != plug })
	if len(st.Instances) == 0 {
		return fmt.Errorf("the daemon runs no plug %q", plug)
	}
	return nil
}

// writeSandboxLines prints what each instance's sandbox lets it do.
func writeSandboxLines(w io.Writer, st *api.Status) {
	fmt.Fprintln(w)
	for _, i := range st.Instances {
		line := i.Sandbox
		if line == "" {
			line = "not sandboxed (not running, or plugs run --sandbox=false)"
		}
		fmt.Fprintf(w, "%s/%s: %s\n", i.Plug, i.Instance, line)
	}
}

// writeValidateSandbox prints what this host's sandbox enforces, then what
// each enabled plug may do, one line per plug (plugs validate).
func writeValidateSandbox(w io.Writer, d *spec.Deployment, manifests map[string]*spec.Manifest) {
	if d == nil {
		return
	}
	h := sandbox.ProbeHost()
	fmt.Fprintln(w, "\nSandbox on this host (plugs run):")
	for _, l := range h.Lines() {
		fmt.Fprintln(w, "  "+l)
	}
	fmt.Fprintln(w, "What each plug may do:")
	for _, p := range d.Plugs {
		if !p.Enabled {
			continue
		}
		var perms []string
		m := p.Plugin
		if m == nil {
			m = manifests[p.Name]
		}
		if m != nil {
			perms = slices.Clone(m.Permissions)
		}
		perms = append(perms, p.Sandbox.Permissions...)
		l := p.Limits
		line := h.PlugLine(sandbox.Plug{
			Name: p.Name, User: p.User, Groups: p.Sandbox.Groups, Permissions: perms, NoLandlock: p.Sandbox.Disabled,
			Limits: sandbox.Limits{Memory: l.Memory, CPU: l.CPU, PIDs: l.PIDs, NoFile: l.NoFile, AddrSpace: l.AddrSpace, NProc: l.NProc, NoNewPrivs: l.NoNewPrivs},
		})
		if m == nil {
			line += " (its manifest is not fetched yet: its permissions are not known)"
		}
		fmt.Fprintln(w, "  "+line)
	}
}

// writePluginLines prints what the plug's plugin says of itself: name and
// version, description, author, license, the data it exports, and the
// instructions for the people who set it up (plugs status PLUG).
func writePluginLines(w io.Writer, st *api.Status) {
	for _, p := range st.Plugins {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "Plugin:       %s %s\n", cmp.Or(p.Name, p.Plug), p.Version)
		for _, l := range []struct{ k, v string }{
			{"UUID:", p.UUID}, {"Description:", p.Description}, {"Author:", p.Author},
			{"License:", p.License}, {"Exports:", p.Exports}, {"Instructions:", p.Instructions},
		} {
			if l.v != "" {
				fmt.Fprintf(w, "%-13s %s\n", l.k, l.v)
			}
		}
	}
}
