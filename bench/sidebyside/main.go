// Command sidebyside measures plugs beside supervisord, s6, runit and pm2
// and beside a minimal fork/exec baseline, on the same machine in the same
// run, and writes BENCHMARKS.md. bench/run.sh installs the peers and runs it.
//
// Every wait is bounded and every process it started is stopped by its pid
// before it returns.
package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type sample struct {
	cold, converge, stop time.Duration
	coldPresent          time.Duration // a second start, on what the first left (plugs: its state dir)
	exited               time.Duration // stop: until the supervisor itself has exited
	restarts             []time.Duration
	unneeded             int
	idleCPU              float64 // percent of one core
	rssKiB, pssKiB       uint64
	orphans              int
	convergeCapped       bool // did not converge within convergeLimit
	haveIdle, haveKill   bool
	err                  error
}

type result struct {
	peer    peer
	n       int
	samples []sample
}

func main() {
	ns := flag.String("n", "100,1000", "comma-separated child counts")
	runsFlag := flag.String("runs", "3", "runs per peer, one value or one per count")
	slowFlag := flag.String("runs-slow", "", "runs of the slow peers (supervisord, pm2: minutes per run at N = 1,000), one value or one per count; default -runs")
	idleFlag := flag.String("idle", "60s", "idle window for CPU and memory, one value or one per count")
	only := flag.String("peers", "baseline,plugs,supervisord,s6,runit,pm2", "peers to measure")
	plugsBin := flag.String("plugs", "bin/plugs", "plugs binary")
	baseBin := flag.String("baseline", "bin/baseline", "baseline binary")
	pm2Bin := flag.String("pm2", "bench/.peers/node_modules/.bin/pm2", "pm2 binary")
	out := flag.String("o", "BENCHMARKS.md", "report file")
	work := flag.String("work", "", "work directory (default a temp dir)")
	flag.DurationVar(&convergeLimit, "converge-limit", convergeLimit, "longest wait for a peer's converge (its apply command included); a capped figure is reported with \">\"")
	flag.Parse()
	load0 := loadAvg()

	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	all := map[string]peer{
		"baseline":    baselinePeer{bin: abs(*baseBin)},
		"plugs":       plugsPeer{bin: abs(*plugsBin)},
		"supervisord": supervisordPeer{},
		"s6":          s6Peer{},
		"runit":       runitPeer{},
		"pm2":         pm2Peer{bin: abs(*pm2Bin)},
	}
	root := *work
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("", "plugs-bench-"); err != nil {
			fatal(err)
		}
		defer os.RemoveAll(root)
	}
	var peers []peer
	for _, name := range strings.Split(*only, ",") {
		p, ok := all[strings.TrimSpace(name)]
		if !ok {
			fatal(fmt.Errorf("unknown peer %q", name))
		}
		if err := p.available(); err != nil {
			fmt.Fprintf(os.Stderr, "skip %s: %v\n", p.name(), err)
			continue
		}
		peers = append(peers, p)
	}
	started := time.Now()
	var results []*result
	counts := strings.Split(*ns, ",")
	runsList, idleList := perCount(*runsFlag, len(counts)), perCount(*idleFlag, len(counts))
	slowList := runsList
	if *slowFlag != "" {
		slowList = perCount(*slowFlag, len(counts))
	}
	var runsDesc, idleDesc []string
	for i, nstr := range counts {
		n, err := strconv.Atoi(strings.TrimSpace(nstr))
		if err != nil || n < 10 {
			fatal(fmt.Errorf("bad -n %q", nstr))
		}
		runs, err := strconv.Atoi(runsList[i])
		if err != nil || runs < 1 {
			fatal(fmt.Errorf("bad -runs %q", runsList[i]))
		}
		idleD, err := time.ParseDuration(idleList[i])
		if err != nil {
			fatal(fmt.Errorf("bad -idle %q", idleList[i]))
		}
		slowRuns, err := strconv.Atoi(slowList[i])
		if err != nil || slowRuns < 1 {
			fatal(fmt.Errorf("bad -runs-slow %q", slowList[i]))
		}
		idle := &idleD
		desc := fmt.Sprintf("%d runs at N=%d", runs, n)
		if slowRuns != runs {
			desc += fmt.Sprintf(" (%d of supervisord and pm2)", slowRuns)
		}
		runsDesc = append(runsDesc, desc)
		idleDesc = append(idleDesc, fmt.Sprintf("%v at N=%d", idleD, n))
		for _, p := range peers {
			res := &result{peer: p, n: n}
			peerRuns := runs
			if slowPeers[p.name()] {
				peerRuns = slowRuns
			}
			for r := 0; r < peerRuns; r++ {
				dir := filepath.Join(root, fmt.Sprintf("%s-%d-%d", p.name(), n, r))
				s := measure(p, dir, n, r == 0, *idle)
				if s.err != nil {
					fmt.Fprintf(os.Stderr, "%s n=%d run %d: %v\n", p.name(), n, r, s.err)
				}
				res.samples = append(res.samples, s)
				fmt.Fprintf(os.Stderr, "%-11s n=%-5d run %d: cold %v (present %v) restart %v (worst %v) converge %v (unneeded %d) stop %v (exited %v) idle %.2f%% rss %d KiB orphans %d\n",
					p.name(), n, r, s.cold.Round(time.Millisecond), s.coldPresent.Round(time.Millisecond),
					median(s.restarts).Round(time.Microsecond*10), worst(s.restarts).Round(time.Microsecond*10),
					s.converge.Round(time.Millisecond), s.unneeded, s.stop.Round(time.Millisecond), s.exited.Round(time.Millisecond),
					s.idleCPU, s.rssKiB, s.orphans)
			}
			results = append(results, res)
		}
	}
	report := render(results, strings.Join(runsDesc, ", "), strings.Join(idleDesc, ", "), time.Since(started), os.Args[1:], load0, loadAvg())
	if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
		fatal(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s in %v\n", *out, time.Since(started).Round(time.Second))
}

// slowPeers take minutes per run at N = 1,000 (supervisorctl update and
// pm2 startOrRestart of 1,000 children, pm2 kill): -runs-slow bounds them.
var slowPeers = map[string]bool{"supervisord": true, "pm2": true}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "sidebyside:", err)
	os.Exit(1)
}

func generation(prefix string, n, from, gen int) []child {
	cs := make([]child, n)
	for i := range cs {
		idx := from + i
		cs[i] = child{name: fmt.Sprintf("c%05d", idx), marker: fmt.Sprintf("%s%05d%d", prefix, idx, gen)}
	}
	return cs
}

func markers(cs []child) map[string]bool {
	m := make(map[string]bool, len(cs))
	for _, c := range cs {
		m[c.marker] = true
	}
	return m
}

// pollEvery is the period of waitSet's polls: a poll costs little (see
// watcher), so the figures are within a few milliseconds.
const pollEvery = 5 * time.Millisecond

// waitSet waits until the live children with prefix are exactly want.
// The set it returns is verified by a full read of each child (a process
// classified once could have exec'd since).
func waitSet(prefix string, want map[string]bool, limit time.Duration) (map[string]int, error) {
	w := newWatcher(prefix)
	defer w.close()
	deadline := time.Now().Add(limit)
	for {
		got := w.poll(want)
		if sameSet(got, want) && verified(got, prefix) {
			return got, nil
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("after %v: %d children running, want %d%s", limit, len(got), len(want), setDiff(got, want))
		}
		time.Sleep(pollEvery)
	}
}

func sameSet(got map[string]int, want map[string]bool) bool {
	if len(got) != len(want) {
		return false
	}
	for m := range got {
		if !want[m] {
			return false
		}
	}
	return true
}

// verified reads every child of got again: still its marker, not a zombie.
func verified(got map[string]int, prefix string) bool {
	for m, pid := range got {
		if markerOf(pid, prefix) != m {
			return false
		}
	}
	return true
}

// waitRestart waits for marker to run under a pid other than old. before is
// the set of pids that existed when old was killed: only pids that appeared
// since are read, so a poll costs one readdir of /proc however many
// processes run, and the resolution stays well under a millisecond.
func waitRestart(marker string, old int, before map[int]bool, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(limit)
	for {
		for _, pid := range listPIDs() {
			if !before[pid] && pid != old && markerOf(pid, marker) == marker {
				return time.Since(start), nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s not restarted after %v", marker, limit)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

func measure(p peer, dir string, n int, first bool, idle time.Duration) (s sample) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.err = err
		return s
	}
	time.Sleep(2 * time.Second) // what the previous measurement left settles
	prefix := fmt.Sprintf("99999.%04d", rand.IntN(10000))
	gen0 := generation(prefix, n, 0, 0)
	var rootPid int
	var helpers []int
	defer func() { cleanup(prefix, rootPid, helpers) }()

	if err := p.configure(dir, gen0); err != nil {
		s.err = err
		return s
	}
	if err := prepare(p, dir); err != nil {
		s.err = err
		return s
	}
	t0 := time.Now()
	rootPid, s.err = p.start(dir)
	if s.err != nil {
		return s
	}
	_ = os.WriteFile(filepath.Join(dir, "root.pid"), []byte(strconv.Itoa(rootPid)), 0o644)
	running, err := waitSet(prefix, markers(gen0), 5*time.Minute)
	if err != nil {
		s.err = fmt.Errorf("cold start: %w", err)
		return s
	}
	s.cold = time.Since(t0)
	helpers = tree(rootPid, prefix)
	time.Sleep(time.Second)

	if first {
		// The idle window comes before the kills, so that the first
		// restart is one after a quiet while, as a real crash is.
		time.Sleep(2 * time.Second)
		procs := tree(rootPid, prefix)
		before := ticks(procs)
		time.Sleep(idle)
		after := ticks(procs)
		s.idleCPU = float64(after-before) / clkTck / idle.Seconds() * 100
		for _, pid := range procs {
			if pi, ok := readProc(pid); ok {
				s.rssKiB += pi.rssKiB
				s.pssKiB += pi.pssKiB
			}
		}
		s.haveIdle = true
	}

	// Restart latency: SIGKILL 20 distinct children, one at a time.
	for _, i := range rand.Perm(n)[:min(20, n)] {
		m := gen0[i].marker
		old := running[m]
		before := map[int]bool{}
		for _, pid := range listPIDs() {
			before[pid] = true
		}
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			s.err = err
			return s
		}
		d, err := waitRestart(m, old, before, time.Minute)
		if err != nil {
			s.err = fmt.Errorf("restart: %w", err)
			return s
		}
		s.restarts = append(s.restarts, d)
		time.Sleep(50 * time.Millisecond)
	}

	// Convergence: 10% removed, 10% added, 10% changed.
	tenth := n / 10
	next := append([]child(nil), gen0[tenth:]...)              // remove the first tenth
	copy(next[:tenth], generation(prefix, tenth, tenth, 1))    // change the next tenth
	next = append(next, generation(prefix, tenth, n, 0)...)    // add a tenth
	before, err := waitSet(prefix, markers(gen0), time.Minute) // current pids
	if err != nil {
		s.err = fmt.Errorf("before converge: %w", err)
		return s
	}
	if err := p.configure(dir, next); err != nil {
		s.err = err
		return s
	}
	t0 = time.Now()
	if err := p.apply(dir, gen0, next); errors.Is(err, errTimedOut) {
		s.convergeCapped = true // recorded as the limit, marked in the report
	} else if err != nil {
		s.err = fmt.Errorf("converge: %w", err)
		return s
	} else if _, err := waitSet(prefix, markers(next), convergeLimit-time.Since(t0)); err != nil {
		s.convergeCapped = true
	}
	s.converge = time.Since(t0)
	time.Sleep(time.Second)
	after := scanMarkers(prefix)
	for _, c := range gen0[2*tenth:] { // declared before and after, unchanged
		if after[c.marker] != before[c.marker] {
			s.unneeded++
		}
	}
	helpers = append(helpers, tree(rootPid, prefix)...)

	t0 = time.Now()
	if err := p.stop(dir, rootPid); err != nil {
		s.err = fmt.Errorf("stop: %w", err)
		return s
	}
	if _, err := waitSet(prefix, map[string]bool{}, 2*time.Minute); err != nil {
		s.err = fmt.Errorf("stop: %w", err)
		return s
	}
	s.stop = time.Since(t0)
	waitGone(rootPid, 30*time.Second)
	if !alive(rootPid) {
		s.exited = time.Since(t0)
	}

	// A second start on what the first run left: for plugs its state
	// directory (instance folders, config.json, output.log, instance.json),
	// as after a reboot or an upgrade of the daemon. Stopped untimed.
	helpers = append(helpers, tree(rootPid, prefix)...)
	cleanup(prefix, rootPid, helpers)
	helpers = nil
	t0 = time.Now()
	if rootPid, err = p.start(dir); err != nil {
		s.err = fmt.Errorf("second start: %w", err)
		return s
	}
	_ = os.WriteFile(filepath.Join(dir, "root.pid"), []byte(strconv.Itoa(rootPid)), 0o644)
	if _, err := waitSet(prefix, markers(next), 5*time.Minute); err != nil {
		s.err = fmt.Errorf("second start: %w", err)
		return s
	}
	s.coldPresent = time.Since(t0)
	helpers = tree(rootPid, prefix)
	cleanup(prefix, rootPid, helpers)
	rootPid, helpers = 0, nil

	if first {
		s.orphans, s.err = killTest(p, dir+"-kill", n)
		s.haveKill = s.err == nil
	}
	return s
}

// killTest starts the supervisor again, SIGKILLs it, and counts children
// still running a second later.
func killTest(p peer, dir string, n int) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	prefix := fmt.Sprintf("99999.%04d", rand.IntN(10000))
	cs := generation(prefix, n, 0, 0)
	if err := p.configure(dir, cs); err != nil {
		return 0, err
	}
	if err := prepare(p, dir); err != nil {
		return 0, err
	}
	root, err := p.start(dir)
	if err != nil {
		return 0, err
	}
	_ = os.WriteFile(filepath.Join(dir, "root.pid"), []byte(strconv.Itoa(root)), 0o644)
	var helpers []int
	defer func() { cleanup(prefix, root, helpers) }()
	if _, err := waitSet(prefix, markers(cs), 5*time.Minute); err != nil {
		return 0, err
	}
	time.Sleep(time.Second)
	helpers = tree(root, prefix)
	if err := syscall.Kill(root, syscall.SIGKILL); err != nil {
		return 0, err
	}
	time.Sleep(time.Second)
	return len(scanMarkers(prefix)), nil
}

const clkTck = 100 // USER_HZ on Linux

// convergeLimit bounds the wait for a peer to converge, so that one slow
// peer cannot take the whole run's time; a capped figure is reported as ">".
var convergeLimit = 30 * time.Second

func ticks(pids []int) uint64 {
	var t uint64
	for _, pid := range pids {
		if pi, ok := readProc(pid); ok {
			t += pi.ticks
		}
	}
	return t
}

func waitGone(pid int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// cleanup SIGKILLs, by pid, whatever this run started and left behind: the
// supervisor, its helper processes and children carrying this run's prefix.
func cleanup(prefix string, root int, helpers []int) {
	pids := append([]int{root}, helpers...)
	for m, pid := range scanMarkers(prefix) {
		_ = m
		pids = append(pids, pid)
	}
	for _, pid := range pids {
		if pid > 1 && alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// Until each is reaped, not just dead: orphans SIGKILLed here are
	// reaped by init, and the next measurement should not share the
	// machine with that work (a plugs cold start right after the
	// baseline's kill test took twice as long).
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for pid > 1 && time.Now().Before(deadline) {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func worst(ds []time.Duration) time.Duration {
	var w time.Duration
	for _, d := range ds {
		w = max(w, d)
	}
	return w
}

// loadAvg is the 1-minute load average, for the report: the machine may be
// shared.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// setDiff names a few markers that differ between got and want.
func setDiff(got map[string]int, want map[string]bool) string {
	var extra, missing []string
	for m := range got {
		if !want[m] && len(extra) < 3 {
			extra = append(extra, m)
		}
	}
	for m := range want {
		if _, ok := got[m]; !ok && len(missing) < 3 {
			missing = append(missing, m)
		}
	}
	return fmt.Sprintf(" (unexpected %v, missing %v)", extra, missing)
}

// perCount spreads a comma-separated flag value over n counts: one value
// for all, or one per count.
func perCount(v string, n int) []string {
	parts := strings.Split(v, ",")
	out := make([]string, n)
	for i := range out {
		out[i] = strings.TrimSpace(parts[min(i, len(parts)-1)])
	}
	return out
}
