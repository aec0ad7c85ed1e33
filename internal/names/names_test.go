package names_test

import (
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/internal/names"
)

func TestNames(t *testing.T) {
	for _, s := range []string{"a", "heart-rate", "p_1.2", "A9", strings.Repeat("x", names.MaxBytes)} {
		if !names.Valid(s) || !names.PathElement(s) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range []string{"", "-a", ".a", "_a", "a/b", "a b", "ä", "a\x00", strings.Repeat("x", names.MaxBytes+1)} {
		if names.Valid(s) {
			t.Errorf("Valid(%q)", s)
		}
	}
	for _, s := range []string{"", ".", "..", "a/b", `a\b`, "a\x00"} {
		if names.PathElement(s) {
			t.Errorf("PathElement(%q)", s)
		}
	}
}
