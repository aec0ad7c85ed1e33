package spec

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

// markerRe matches an expectation written in a fixture: "# ERROR: summary"
// or "# WARNING: summary". On a line of code it expects a diagnostic whose
// subject starts on that line; alone on its line, one without a subject.
var markerRe = regexp.MustCompile(`#\s*(ERROR|WARNING):\s*(.+?)\s*$`)

// fixtureExpectations reads the markers and the "# VARS: k=v ..." line of
// a fixture.
func fixtureExpectations(t *testing.T, filename string) (want []string, vars map[string]string) {
	t.Helper()
	src, err := os.ReadFile(filename)
	if err != nil {
		t.Fatal(err)
	}
	vars = map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if rest, ok := strings.CutPrefix(text, "# VARS:"); ok {
			for _, kv := range strings.Fields(rest) {
				k, v, _ := strings.Cut(kv, "=")
				vars[k] = v
			}
			continue
		}
		m := markerRe.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		at := line
		if strings.HasPrefix(strings.TrimSpace(text), "#") {
			at = 0
		}
		want = append(want, expectation(strings.ToLower(m[1]), at, m[2]))
	}
	return want, vars
}

func expectation(severity string, line int, summary string) string {
	return fmt.Sprintf("%s:%d: %s", severity, line, summary)
}

// got renders diagnostics the way fixtureExpectations reads markers.
func got(diags hcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		severity, line := "error", 0
		if d.Severity == hcl.DiagWarning {
			severity = "warning"
		}
		if d.Subject != nil {
			line = d.Subject.Start.Line
		}
		out = append(out, expectation(severity, line, d.Summary))
	}
	return out
}

// validateFile runs what plugs validate runs on a fixture.
func validateFile(filename string, vars map[string]string) (*Parser, *Validation, hcl.Diagnostics) {
	p := NewParser()
	p.Hostname = func() (string, error) { return "test-host", nil }
	p.Getenv = func(string) string { return "" }
	v, diags := p.Validate(filename, vars, "")
	return p, v, diags
}

// TestErrorFixtures checks every testdata/errors fixture reports exactly
// the diagnostics its markers name, on the lines they are written on.
func TestErrorFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/errors/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			want, vars := fixtureExpectations(t, file)
			if len(want) == 0 {
				t.Fatal("fixture has no # ERROR: or # WARNING: marker")
			}
			_, _, diags := validateFile(file, vars)
			// Warnings count only where the fixture is about them.
			var kept hcl.Diagnostics
			for _, d := range diags {
				if d.Severity == hcl.DiagError || slices.ContainsFunc(want, func(w string) bool { return strings.HasSuffix(w, ": "+d.Summary) }) {
					kept = append(kept, d)
				}
			}
			have := got(kept)
			slices.Sort(want)
			slices.Sort(have)
			if diff := cmp.Diff(want, have); diff != "" {
				for _, d := range diags {
					t.Logf("%s", d.Error())
				}
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			for _, d := range diags {
				if d.Severity == hcl.DiagError && (d.Detail == "" || !strings.HasSuffix(strings.TrimSpace(d.Detail), ".") && !strings.HasSuffix(d.Detail, "?")) {
					t.Errorf("%s: detail %q is not a whole sentence", d.Summary, d.Detail)
				}
			}
		})
	}
}
