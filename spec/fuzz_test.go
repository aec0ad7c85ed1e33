package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse decodes arbitrary plugs.hcl sources, seeded with the fixtures:
// any input may fail, none may panic.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.hcl")
	for _, name := range files {
		f.Add(mustReadF(f, name))
	}
	// Inputs of the hostile-operator fixes: zero durations, long names,
	// control bytes, a literal secret, h2 and sha256 in a lock.
	f.Add([]byte("plug \"a\" {\n  source = \"./a\"\n  stop_timeout = \"0s\"\n  restart { initial_delay = \"0s\" }\n}\n"))
	f.Add([]byte("plug \"" + strings.Repeat("n", 101) + "\" {\n  source = \"https://h/x.zip\"\n  version = \"@v1.0.0\"\n}\n"))
	f.Add([]byte("host = \"\x1b[31m\"\nplug \"a\" {\n  source = \"./a\"\n  params = { token = \"s3cret\", x = var.y }\n  plugin {\n    command = [\"./a\"]\n    param \"token\" { secret = true }\n  }\n}\n"))
	f.Add([]byte("plug \"a\" {\n  source = \"https://h/a.zip\"\n  revision = \"00\"\n  hash = \"h2:AAAA\"\n  sha256 = \"" + strings.Repeat("0", 64) + "\"\n}\n"))
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
		// Whatever the input, snippets keep their length and show no
		// control byte (see output.go).
		for _, f := range p.Files() {
			for _, c := range f.Bytes {
				if c < 0x20 && c != '\n' && c != '\t' && c != '\r' || c == 0x7f {
					t.Fatalf("control byte %#x in a snippet", c)
				}
			}
		}
	})
}

// manifestSeeds are small manifests that together use every field of both
// forms. They are kept short on purpose: the fuzzer minimizes every input
// that finds new coverage by deleting byte ranges, a search quadratic in the
// input's length, and with the ~800-byte fixtures as seeds each such input
// took its whole 60s -fuzzminimizetime budget, so the worker reported no
// executions for the rest of a short run.
var manifestSeeds = []struct {
	src  string
	form byte // 0: plugin.hcl, 1: plugin.json
}{
	{`plugin "p" {
  version = "1.0"
  kind    = "compiled"
  command = ["./p", "-v"]
  build   = ["go", "build"]
  param "a" {
    type     = list(string)
    default  = ["x"]
    required = false
  }
}`, 0},
	{`plugin "p" {
  command        = ["sh", "p.sh"]
  setup          = ["sh", "setup.sh"]
  setup_required = true
  stop_signal    = "term"
  exports        = "omh:x:1.0"
  hooks { pre_start = ["true"] }
  param "t" {
    type   = string
    secret = true
  }
}`, 0},
	{`{"name": "p", "cli command": "python3", "cli args": ["m.py"], "config requirement": true,
 "configParams": [{"name": "a", "type": "integer", "default": 3, "secret": true}]}`, 1},
	{`{"name": "p", "cli command": "x", "configParams": {"b": {"type": "boolean", "required": true}}}`, 1},
	{`{"name": "p", "cli command": "x", "config requirement": true, "configParams": ["token", "", {"name": "b"}, 3]}`, 1},
	{`{"name": "p", "entry_point": "main.py", "author": {"name": "A", "email": "a@x"}, "license": "MIT",
 "dependencies": {"requests": ">=2", "x": "1.0", "y": "*"}, "installed_at": "2025-01-01T00:00:00Z", "setup_required": true,
 "compatibility": {"platform_version": ">=0.1", "python_version": "3.9+", "os": "linux"}}`, 1},
	{"{\"name\": \"p\x1b[2J\", \"entry_point\": \"run.sh\", \"dependencies\": [\"a\", \"-e .\"]}", 1},
	{`{"name": "p", "type": "compiled", "entry_point": "./p -v", "permissions": ["gpio"],
 "configuration": {"a": 1, "b": ["x"], "c": {"k": "v"}},
 "hooks": {"pre_start": "true", "pre_stop": ["x"]}}`, 1},
}

// FuzzManifest decodes arbitrary manifests in both forms; form picks the
// form by its lowest bit.
func FuzzManifest(f *testing.F) {
	for _, s := range manifestSeeds {
		f.Add([]byte(s.src), s.form)
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
