package spec

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSandboxAndCgroupLimits(t *testing.T) {
	src := `
plug "a" {
  source = "./a"
  limits {
    memory = "256MiB"
    cpu    = 0.5
    pids   = 64
    nofile = 1024
  }
  sandbox {
    permissions = ["filesystem.write:/var/lib/a", "network.tcp:5432"]
    groups      = ["dialout"]
  }
  instance "small" {
    limits { memory = "64MiB" }
  }
  instance "same" {}
}
plug "b" {
  source = "./b"
  sandbox { enabled = false }
}
`
	d, diags := NewParser().ParseDeployment([]byte(src), "plugs.hcl", nil)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	a := d.Plug("a")
	if d := cmp.Diff(Limits{Memory: 256 << 20, CPU: 0.5, PIDs: 64, NoFile: 1024}, a.Limits); d != "" {
		t.Errorf("plug limits (-want +got):\n%s", d)
	}
	if got := a.InstanceLimits(a.Instances[0]); got != (Limits{Memory: 64 << 20, CPU: 0.5, PIDs: 64, NoFile: 1024}) {
		t.Errorf("instance small: %+v", got)
	}
	if got := a.InstanceLimits(a.Instances[1]); got != a.Limits {
		t.Errorf("instance same: %+v", got)
	}
	if !cmp.Equal(a.Sandbox.Permissions, []string{"filesystem.write:/var/lib/a", "network.tcp:5432"}) ||
		!cmp.Equal(a.Sandbox.Groups, []string{"dialout"}) || a.Sandbox.Disabled {
		t.Errorf("sandbox: %+v", a.Sandbox)
	}
	if !d.Plug("b").Sandbox.Disabled {
		t.Error("sandbox { enabled = false } not decoded")
	}
}

func TestSandboxDiagnostics(t *testing.T) {
	for _, tc := range []struct{ body, summary string }{
		{`limits { memory = "lots" }`, "Invalid memory size"},
		{`limits { memory = 1000 }`, "Invalid memory size"},
		{`limits { cpu = 0 }`, "Invalid CPU limit"},
		{`limits { pids = 0 }`, "Invalid pids limit"},
		{`sandbox { permissions = ["camera"] }`, "Unknown permission"},
		{`sandbox { premissions = [] }`, "Unsupported argument"},
		{`instance "x" {
  limits {}
  limits {}
}`, "Duplicate limits block"},
	} {
		_, diags := NewParser().ParseDeployment([]byte("plug \"a\" {\n  source = \"./a\"\n  "+tc.body+"\n}\n"), "plugs.hcl", nil)
		if len(diags) == 0 || diags[0].Summary != tc.summary {
			t.Errorf("%s: %v, want %q", tc.body, diags, tc.summary)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]uint64{"256MiB": 256 << 20, "1GiB": 1 << 30, "1G": 1 << 30, "512M": 512 << 20, "1.5GiB": 3 << 29, "4096": 4096, "10KB": 10 << 10} {
		if got, ok := ParseBytes(in); !ok || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1MiB", "12 parsecs"} {
		if _, ok := ParseBytes(bad); ok {
			t.Errorf("ParseBytes(%q) ok", bad)
		}
	}
}
