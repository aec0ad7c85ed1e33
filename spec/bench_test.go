package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// benchDeployment writes a plugs.hcl of n plugs with 3 instances each,
// every plug with an inline manifest so that its params are checked.
func benchDeployment(b *testing.B, n int) (string, []byte) {
	b.Helper()
	_, src := benchDeploymentSrc(n)
	file := filepath.Join(b.TempDir(), "plugs.hcl")
	if err := os.WriteFile(file, src, 0o644); err != nil {
		b.Fatal(err)
	}
	return file, src
}

// benchDeploymentSrc is the source benchDeployment writes.
func benchDeploymentSrc(n int) (string, []byte) {
	var sb strings.Builder
	sb.WriteString("variable \"site\" { default = \"ward-3\" }\n")
	for i := range n {
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
	return "plugs.hcl", []byte(sb.String())
}

// BenchmarkLoadDeployment decodes and checks a plugs.hcl of 1,000 plugs with
// 3 instances each: read, parse, decode, manifests, params.
func BenchmarkLoadDeployment(b *testing.B) {
	file, src := benchDeployment(b, 1000)
	b.SetBytes(int64(len(src)))
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

// BenchmarkParseOnly is the floor BenchmarkLoadDeployment is measured
// against: bare hclsyntax.ParseConfig of the same bytes, no decoding.
func BenchmarkParseOnly(b *testing.B) {
	file, src := benchDeployment(b, 1000)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		f, diags := hclsyntax.ParseConfig(src, file, hcl.InitialPos)
		if diags.HasErrors() || f == nil {
			b.Fatal(diags)
		}
	}
}

// BenchmarkDecodeVsParse runs the two above in turn, on the same bytes, and
// reports the CPU time (user+system of the whole process, GC included) of
// each and their ratio, "x-parse": on a machine shared with other work the
// wall-clock figures of the two benchmarks, run a minute apart, disagree
// by more than the ratio asked (1.2); CPU time measured side by side does
// not. Issue 17's goal is x-parse <= 1.2.
//
// The decoder parses the file in pieces (split.go), which costs less than
// ParseConfig of the whole; "x-split-parse" is the decode's CPU time over
// that parse of its own, measured in the same loop: what decoding and
// checking add to the parse.
func BenchmarkDecodeVsParse(b *testing.B) {
	file, src := benchDeployment(b, 1000)
	var parse, split, load time.Duration
	for b.Loop() {
		t0 := cpuTime(b)
		f, diags := hclsyntax.ParseConfig(src, file, hcl.InitialPos)
		if diags.HasErrors() || f == nil {
			b.Fatal(diags)
		}
		ts := cpuTime(b)
		diags, splits := checkNestingSplitHCL(src, file, splitBytes)
		if f, diags = parseSplit(src, file, splits); diags.HasErrors() || f == nil || len(splits) == 0 {
			b.Fatal(diags)
		}
		split += cpuTime(b) - ts
		t1 := cpuTime(b)
		p := NewParser()
		d, diags := p.LoadDeployment(file, nil)
		m, mdiags := p.LoadManifests(d, nil, "")
		diags = append(diags, mdiags...)
		diags = append(diags, CheckPlugs(d, m)...)
		if len(diags) != 0 || len(d.Plugs) != 1000 {
			b.Fatalf("%d plugs, %v", len(d.Plugs), diags)
		}
		t2 := cpuTime(b)
		parse, load = parse+ts-t0, load+t2-t1
	}
	b.ReportMetric(float64(parse.Nanoseconds())/float64(b.N), "parse-cpu-ns/op")
	b.ReportMetric(float64(load.Nanoseconds())/float64(b.N), "decode-cpu-ns/op")
	b.ReportMetric(float64(load)/float64(parse), "x-parse")
	b.ReportMetric(float64(load)/float64(split), "x-split-parse")
}

// BenchmarkDecodeAfterParse is what BenchmarkLoadDeployment adds to the
// parse: the same file parsed once, then decoded and checked each
// iteration (no read, no nesting check), to profile plugs' own work
// without the parser's (-cpuprofile, -memprofile).
func BenchmarkDecodeAfterParse(b *testing.B) {
	file, src := benchDeployment(b, 1000)
	p := NewParser()
	f, diags := hclsyntax.ParseConfig(src, file, hcl.InitialPos)
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	b.ReportAllocs()
	for b.Loop() {
		d, diags := p.decodeDeployment(f, file, nil)
		m, mdiags := p.LoadManifests(d, nil, "")
		diags = append(diags, mdiags...)
		diags = append(diags, CheckPlugs(d, m)...)
		if len(diags) != 0 || len(d.Plugs) != 1000 {
			b.Fatalf("%d plugs, %v", len(d.Plugs), diags)
		}
	}
}

// cpuTime is the CPU time the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func deps(i int) string {
	if i == 0 {
		return ""
	}
	return fmt.Sprintf("%q", fmt.Sprintf("p%d", i-1))
}
