package render

import (
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/spec"
)

// Update is the rollout policy of a plug's instances: its update {} block
// (spec fills its defaults), or nil without one (changes replace every
// instance at once).
func Update(plug *spec.Plug) *instance.Update {
	u := plug.Health.Update
	if u == nil {
		return nil
	}
	return &instance.Update{
		MaxParallel:     max(u.MaxParallel, 1),
		MinHealthyTime:  u.MinHealthyTime,
		HealthyDeadline: u.HealthyDeadline,
		AutoRevert:      u.AutoRevert,
	}
}
