package instance

import (
	"maps"
	"slices"
)

// Levels gives every plug of deps (plug → the plugs it depends on) its
// depends_on level: 0 for a plug that depends on no plug of deps, else one
// more than its deepest dependency. Starting level by level, lowest first,
// starts every plug after what it depends on; stopping in reverse stops
// dependents first. A dependency that is not a key of deps (not part of
// what is ordered) and a plug's dependency on itself are ignored. A cycle
// (which spec rejects) is broken deterministically: its plugs share the
// level after the last one that could be ordered.
//
// It is the one place depends_on levels are computed: the plan's order,
// reconcile.Apply's starts and stops and the runner's shutdown use it.
func Levels(deps map[string][]string) map[string]int {
	level := make(map[string]int, len(deps))
	remaining := slices.Sorted(maps.Keys(deps))
	for n := 0; len(remaining) > 0; n++ {
		var ready, rest []string
		for _, p := range remaining {
			ok := true
			for _, d := range deps[p] {
				if _, known := deps[d]; !known || d == p {
					continue
				}
				if l, done := level[d]; !done || l >= n {
					ok = false
					break
				}
			}
			if ok {
				ready = append(ready, p)
			} else {
				rest = append(rest, p)
			}
		}
		if len(ready) == 0 { // a cycle
			ready, rest = rest, nil
		}
		for _, p := range ready {
			level[p] = n
		}
		remaining = rest
	}
	return level
}

// ByLevel groups items by the level of their plug (plug(item), looked up
// in level; a plug missing from it is level 0), lowest level first,
// keeping the items' order within a level. Levels without items are left
// out, so every group is non-empty.
func ByLevel[T any](items []T, level map[string]int, plug func(T) string) [][]T {
	var out [][]T
	for _, it := range items {
		l := level[plug(it)]
		for len(out) <= l {
			out = append(out, nil)
		}
		out[l] = append(out[l], it)
	}
	return slices.DeleteFunc(out, func(g []T) bool { return len(g) == 0 })
}
