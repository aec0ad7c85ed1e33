package spec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPlugHooksBlock: a plug's hooks {} block is decoded; an empty list
// is kept (it turns the manifest's hook off), an unset hook stays nil.
func TestPlugHooksBlock(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "plugs.hcl")
	src := `plug "a" {
  source = "./a"
  hooks {
    pre_start = ["./prepare.sh", "--fast"]
    pre_stop  = []
  }
}
plug "b" { source = "./b" }
`
	if err := os.WriteFile(name, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	d, diags := NewParser().LoadDeployment(name, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	want := &Hooks{PreStart: []string{"./prepare.sh", "--fast"}, PreStop: []string{}}
	if diff := cmp.Diff(want, d.Plug("a").Hooks); diff != "" {
		t.Errorf("hooks (-want +got):\n%s", diff)
	}
	if d.Plug("b").Hooks != nil {
		t.Errorf("plug without hooks: %+v", d.Plug("b").Hooks)
	}
}
