package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestPlanDetailedExitcodeErrors: under -detailed-exitcode, 2 means
// "changes pending", so a failed environment (here a git remote that
// refuses connections) exits 1, as in Terraform; without it, 2.
func TestPlanDetailedExitcodeErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plugs.hcl")
	body := "plug \"x\" {\n  source  = \"git::http://127.0.0.1:1/x.git\"\n  version = \"main\"\n}\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"plan", "-q", "-f", file, "-detailed-exitcode"}, exitInput},
		{[]string{"plan", "-q", "-f", file}, exitEnv},
	} {
		var out, errOut bytes.Buffer
		if got := run(c.args, &out, &errOut); got != c.want {
			t.Errorf("plugs %v: exit %d, want %d\nstderr: %s", c.args, got, c.want, errOut.String())
		}
	}
}
