package instance

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestLevels(t *testing.T) {
	for _, tc := range []struct {
		name string
		deps map[string][]string
		want map[string]int
	}{
		{"none", map[string][]string{}, map[string]int{}},
		{"independent", map[string][]string{"a": nil, "b": nil}, map[string]int{"a": 0, "b": 0}},
		{"chain", map[string][]string{"app": {"bridge"}, "bridge": {"db"}, "db": nil}, map[string]int{"db": 0, "bridge": 1, "app": 2}},
		{"deepest dependency wins", map[string][]string{"app": {"db", "bridge"}, "bridge": {"db"}, "db": nil}, map[string]int{"db": 0, "bridge": 1, "app": 2}},
		{"a dependency not ordered is ignored", map[string][]string{"app": {"gone"}}, map[string]int{"app": 0}},
		{"a dependency on itself is ignored", map[string][]string{"app": {"app"}}, map[string]int{"app": 0}},
		{"a cycle shares the level after the ordered ones",
			map[string][]string{"db": nil, "a": {"b", "db"}, "b": {"a"}, "c": {"a"}},
			map[string]int{"db": 0, "a": 1, "b": 1, "c": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Levels(tc.deps); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Levels(%v) = %v, want %v", tc.deps, got, tc.want)
			}
		})
	}
}

// TestLevelsOrder: on random acyclic graphs every plug is on a higher
// level than each of its dependencies, and on level 0 exactly when it has
// none.
func TestLevelsOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := 1 + r.IntN(20)
		deps := map[string][]string{}
		for i := range n {
			p := fmt.Sprint("p", i)
			deps[p] = nil
			for j := range i { // only on lower numbers: acyclic
				if r.IntN(4) == 0 {
					deps[p] = append(deps[p], fmt.Sprint("p", j))
				}
			}
		}
		level := Levels(deps)
		for p, ds := range deps {
			if (level[p] == 0) != (len(ds) == 0) {
				t.Fatalf("%s on level %d with dependencies %v (%v)", p, level[p], ds, deps)
			}
			for _, d := range ds {
				if level[p] <= level[d] {
					t.Fatalf("%s (level %d) not after its dependency %s (level %d)", p, level[p], d, level[d])
				}
			}
		}
	}
}

func TestByLevel(t *testing.T) {
	type item struct{ plug, name string }
	items := []item{{"app", "1"}, {"db", "1"}, {"app", "2"}, {"top", "1"}, {"db", "2"}}
	level := map[string]int{"db": 0, "app": 2, "top": 5} // levels 1, 3 and 4 hold nothing
	got := ByLevel(items, level, func(it item) string { return it.plug })
	want := [][]item{{{"db", "1"}, {"db", "2"}}, {{"app", "1"}, {"app", "2"}}, {{"top", "1"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ByLevel = %v, want %v", got, want)
	}
	if got := ByLevel([]item(nil), level, func(it item) string { return it.plug }); len(got) != 0 {
		t.Errorf("ByLevel(nil) = %v", got)
	}
}
