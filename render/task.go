package render

import (
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/spec"
)

// Task is the instance.Task of plug with manifest m (spec.EffectiveTask),
// every default filled; nil when the plug is a service.
func Task(plug *spec.Plug, m *spec.Manifest) *instance.Task {
	t := spec.EffectiveTask(plug, m)
	if t == nil {
		return nil
	}
	out := instance.Task{
		MaxConcurrent: t.MaxConcurrent,
		Timeout:       t.Timeout,
		MaxTimeout:    t.MaxTimeout,
		OutputLimit:   t.OutputLimit,
		MaxOutput:     t.MaxOutput,
		History:       t.History,
	}
	if t.Queue != nil {
		out.Queue = *t.Queue
		if out.Queue == 0 {
			out.Queue = -1 // queue = 0 in plugs.hcl: no queue
		}
	}
	for _, s := range t.Schedules {
		out.Schedules = append(out.Schedules, instance.Schedule{
			Cron: s.Cron, UTC: s.UTC, Every: s.Every, Persistent: s.Persistent,
			Jitter: s.Jitter, Overlap: s.Overlap, Input: s.Input,
		})
	}
	out = out.WithDefaults()
	return &out
}
