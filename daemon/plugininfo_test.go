package daemon

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/plugs-dev/plugs/api"
)

// TestStatusCarriesPluginInfo: what a MobileOps manifest says of itself
// (author, license, description) reaches the API status, which plugs
// status PLUG shows (issue 12: these fields were warned as unknown).
func TestStatusCarriesPluginInfo(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "plugins", "steps", "plugin.json"), `{
  "name": "steps",
  "version": "1.4.0",
  "description": "Counts steps",
  "type": "shell",
  "entry_point": "run.sh",
  "author": "Ward IT <it@example.org>",
  "license": "MIT",
  "installed_at": "2026-11-01T10:00:00Z"
}`)
	writeFile(t, filepath.Join(dir, "plugins", "steps", "run.sh"), "#!/bin/sh\nexec sleep 60\n")
	mustChmod(t, filepath.Join(dir, "plugins", "steps", "run.sh"), 0o755)
	writeFile(t, filepath.Join(dir, "plugs.hcl"), "plug \"steps\" {\n  source = \"./plugins/steps\"\n}\n")
	c := startDaemon(t, Options{File: filepath.Join(dir, "plugs.hcl"), StateDir: filepath.Join(dir, ".plugs")})
	st := waitStatus(t, c, "steps running", func(s *api.Status) bool {
		i := statusOf(s, "steps", "default")
		return i != nil && i.State == "running"
	})
	var got *api.PluginInfo
	for i := range st.Plugins {
		if st.Plugins[i].Plug == "steps" {
			got = &st.Plugins[i]
		}
	}
	if got == nil || got.Author != "Ward IT <it@example.org>" || got.License != "MIT" || got.Description != "Counts steps" || got.Version != "1.4.0" {
		t.Errorf("status plugins = %+v, want the manifest's author, license, description and version", st.Plugins)
	}
}

func mustChmod(t testing.TB, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}
