package render

import (
	"slices"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/spec"
)

// Hooks renders an instance's hooks: the manifest's, each replaced by the
// plug's hooks {} block when that sets it, with the default timeout when
// there is any hook.
func Hooks(plug *spec.Plug, m *spec.Manifest) instance.Hooks {
	h := instance.Hooks{
		PreStart:  slices.Clone(m.Hooks.PreStart),
		PostStart: slices.Clone(m.Hooks.PostStart),
		PreStop:   slices.Clone(m.Hooks.PreStop),
	}
	if p := plug.Hooks; p != nil {
		if p.PreStart != nil {
			h.PreStart = slices.Clone(p.PreStart)
		}
		if p.PostStart != nil {
			h.PostStart = slices.Clone(p.PostStart)
		}
		if p.PreStop != nil {
			h.PreStop = slices.Clone(p.PreStop)
		}
	}
	if h.PreStart != nil || h.PostStart != nil || h.PreStop != nil {
		h.Timeout = instance.DefaultHookTimeout
	}
	return h
}
