package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkLoadDeployment decodes and checks a plugs.hcl of 1,000 plugs with
// 3 instances each, every plug with an inline manifest so params are checked.
func BenchmarkLoadDeployment(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("variable \"site\" { default = \"ward-3\" }\n")
	for i := range 1000 {
		fmt.Fprintf(&sb, `plug "p%d" {
  source  = "git::https://git.example.org/acme/p%d.git"
  version = "~> 1.2"
  params  = { interval = "5s", site = var.site }
  depends_on = [%s]
  instance "a" { params = { device_id = "A%d" } }
  instance "b" { params = { device_id = "B%d", retries = 3 } }
  instance "c" { params = { device_id = "C%d" } }
  plugin {
    command = ["python3", "main.py"]
    param "device_id" {
      type     = string
      required = true
    }
    param "interval" { default = "10s" }
    param "site" { type = string }
    param "retries" { type = number }
  }
}
`, i, i, deps(i), i, i, i)
	}
	file := filepath.Join(b.TempDir(), "plugs.hcl")
	if err := os.WriteFile(file, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p := NewParser()
		d, diags := p.LoadDeployment(file, nil)
		m, mdiags := p.LoadManifests(d, nil, "")
		diags = append(diags, mdiags...)
		diags = append(diags, CheckPlugs(d, m)...)
		if len(diags) != 0 || len(d.Plugs) != 1000 {
			b.Fatalf("%d plugs, %v", len(d.Plugs), diags)
		}
	}
}

func deps(i int) string {
	if i == 0 {
		return ""
	}
	return fmt.Sprintf("%q", fmt.Sprintf("p%d", i-1))
}
