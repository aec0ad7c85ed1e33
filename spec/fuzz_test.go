package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse decodes arbitrary plugs.hcl sources, seeded with the fixtures:
// any input may fail, none may panic.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.hcl")
	for _, name := range files {
		f.Add(mustReadF(f, name))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src []byte) {
		p := NewParser()
		p.Getenv = func(string) string { return "" }
		d, _ := p.ParseDeployment(src, filepath.Join(dir, "plugs.hcl"), map[string]string{"site": "x"})
		if d != nil {
			m := map[string]*Manifest{}
			for _, plug := range d.Plugs {
				if plug.Plugin != nil {
					m[plug.Name] = plug.Plugin
				}
			}
			CheckPlugs(d, m)
		}
		p.ParseLock(src, filepath.Join(dir, LockFileName))
	})
}

// FuzzManifest decodes arbitrary manifests in both forms; the last byte of
// the input picks the form.
func FuzzManifest(f *testing.F) {
	files, _ := filepath.Glob("testdata/manifests/*/plugin.*")
	for _, name := range files {
		form := byte(0)
		if filepath.Ext(name) == ".json" {
			form = 1
		}
		f.Add(mustReadF(f, name), form)
	}
	f.Fuzz(func(t *testing.T, src []byte, form byte) {
		name := "plugin.hcl"
		if form%2 == 1 {
			name = "plugin.json"
		}
		m, diags := NewParser().ParseManifest(src, name)
		if m == nil && !diags.HasErrors() {
			t.Fatal("no manifest and no error")
		}
	})
}

func mustReadF(f *testing.F, name string) []byte {
	f.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
