package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"
)

type stat struct{ med, lo, hi float64 }

func summarize(vals []float64) (stat, bool) {
	if len(vals) == 0 {
		return stat{}, false
	}
	s := append([]float64(nil), vals...)
	sort.Float64s(s)
	return stat{med: s[len(s)/2], lo: s[0], hi: s[len(s)-1]}, true
}

// column extracts one figure from every successful sample.
func column(r *result, f func(sample) (float64, bool)) []float64 {
	var out []float64
	for _, s := range r.samples {
		if v, ok := f(s); ok {
			out = append(out, v)
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

var figures = []struct {
	title string
	unit  string
	get   func(sample) (float64, bool)
}{
	{"cold start", "ms", func(s sample) (float64, bool) { return ms(s.cold), s.cold > 0 }},
	{"restart after SIGKILL", "ms", func(s sample) (float64, bool) {
		return ms(median(s.restarts)), len(s.restarts) > 0
	}},
	{"memory (RSS sum)", "MiB", func(s sample) (float64, bool) { return float64(s.rssKiB) / 1024, s.haveIdle }},
	{"memory (PSS sum)", "MiB", func(s sample) (float64, bool) { return float64(s.pssKiB) / 1024, s.haveIdle }},
	{"idle CPU", "% of a core", func(s sample) (float64, bool) { return s.idleCPU, s.haveIdle }},
	{"converge 30% change", "ms", func(s sample) (float64, bool) { return ms(s.converge), s.converge > 0 }},
	{"needless restarts", "children", func(s sample) (float64, bool) { return float64(s.unneeded), s.converge > 0 }},
	{"stop all", "ms", func(s sample) (float64, bool) { return ms(s.stop), s.stop > 0 }},
	{"left running after SIGKILL of the supervisor", "children", func(s sample) (float64, bool) {
		return float64(s.orphans), s.haveKill
	}},
}

func render(results []*result, runs, idle string, took time.Duration, args []string) string {
	var b strings.Builder
	b.WriteString("# Benchmarks: plugs beside the supervisors people use today\n\n")
	b.WriteString("Written by `make bench` (bench/run.sh → bench/sidebyside). Do not edit by hand.\n\n")
	fmt.Fprintf(&b, "Command: `bench/run.sh` = `go run ./bench/sidebyside %s`; %s per peer; idle window %s; whole run %v.\n\n",
		strings.Join(args, " "), runs, idle, took.Round(time.Second))
	b.WriteString("## Machine\n\n")
	fmt.Fprintf(&b, "- %s, %d cores, %s\n- kernel %s, %s\n", cpuModel(), runtime.NumCPU(), memTotal(), uname(), runtime.Version())
	b.WriteString("\n## Versions and the commands each peer is driven with\n\n| peer | version | apply a new declaration; stop |\n|---|---|---|\n")
	seen := map[string]bool{}
	for _, r := range results {
		if seen[r.peer.name()] {
			continue
		}
		seen[r.peer.name()] = true
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.peer.name(), r.peer.version(), r.peer.commands())
	}
	b.WriteString(`
## What is measured

Each peer runs N children, ` + "`sleep MARKER`" + ` with a unique marker, read from /proc.
1. **cold start**: from launching the supervisor to all N children running.
2. **restart after SIGKILL**: one child SIGKILLed, until its replacement runs; median of 20 per run.
3. **memory**: the supervisor's own processes (e.g. s6-svscan + every s6-supervise, runsvdir + every
   runsv, the pm2 daemon, the plugs daemon with its embedded MQTT broker), summed; children excluded.
   RSS counts shared pages once per process, PSS splits them.
4. **idle CPU**: CPU time of those processes over the idle window, as a percentage of one core.
5. **converge**: the declaration changes (10% removed, 10% added, 10% with a changed param) and is
   applied with the peer's own commands; time until the running set matches; **needless restarts**
   counts unchanged children whose pid changed.
6. **stop all**: until no child is left; **left running after SIGKILL** of the supervisor, a second later.

Figures are the median over runs, with the spread (min–max) in brackets, and the ratio to the
baseline measured in the same run: a minimal Go program that only fork/execs the N children,
restarts them on exit and kills them on SIGTERM (` + "`bench/baseline`" + `), the physical limit.
A ratio of 1.0x matches the baseline; higher is slower or bigger.
`)
	byN := map[int][]*result{}
	var ns []int
	for _, r := range results {
		if _, ok := byN[r.n]; !ok {
			ns = append(ns, r.n)
		}
		byN[r.n] = append(byN[r.n], r)
	}
	for _, n := range ns {
		fmt.Fprintf(&b, "\n## N = %d\n\n", n)
		var base *result
		for _, r := range byN[n] {
			if r.peer.name() == "baseline" {
				base = r
			}
		}
		b.WriteString("| figure |")
		for _, r := range byN[n] {
			fmt.Fprintf(&b, " %s |", r.peer.name())
		}
		b.WriteString("\n|---|")
		for range byN[n] {
			b.WriteString("---|")
		}
		b.WriteString("\n")
		for _, f := range figures {
			fmt.Fprintf(&b, "| %s (%s) |", f.title, f.unit)
			var bs stat
			haveBase := false
			if base != nil {
				bs, haveBase = summarize(column(base, f.get))
			}
			for _, r := range byN[n] {
				st, ok := summarize(column(r, f.get))
				if !ok {
					b.WriteString(" n/a |")
					continue
				}
				cell := fmt.Sprintf("%s [%s–%s]", num(st.med), num(st.lo), num(st.hi))
				if f.title == "converge 30% change" && capped(r) {
					cell = "> " + cell + " (not converged within the limit)"
				}
				if f.title == "needless restarts" && capped(r) {
					cell = "≥ " + cell + " (counted before convergence)"
				}
				if haveBase && bs.med > 0 && r != base && f.unit != "children" {
					cell += fmt.Sprintf(" **%.1fx**", st.med/bs.med)
				}
				fmt.Fprintf(&b, " %s |", cell)
			}
			b.WriteString("\n")
		}
		for _, r := range byN[n] {
			for i, s := range r.samples {
				if s.err != nil {
					fmt.Fprintf(&b, "\n- %s run %d failed: %v", r.peer.name(), i, s.err)
				}
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	l, _, _ := strings.Cut(string(b), "\n")
	return strings.Join(strings.Fields(l)[1:], " ") + " memory"
}

func uname() string {
	out, err := exec.Command("uname", "-r").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

func capped(r *result) bool {
	for _, s := range r.samples {
		if s.convergeCapped {
			return true
		}
	}
	return false
}
