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
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

type sample struct {
	cold, converge, stop time.Duration
	coldPresent          time.Duration // a second start, on what the first left (plugs: its state dir)
	exited               time.Duration // stop: until the supervisor itself has exited
	firstRestart         time.Duration // the first SIGKILL after the idle window (first run only)
	firstReaped          time.Duration // of firstRestart: until the supervisor had reaped the killed child
	haveFirst            bool
	restarts             []time.Duration // the other kills
	reaped               []time.Duration // of each of restarts: until the killed child was reaped
	unneeded             int
	idleCPU              float64 // percent of one core
	rssKiB, pssKiB       uint64
	maxFDs               int // open descriptors of the supervisor's process that holds most
	orphans              int
	convergeCapped       bool          // did not converge within convergeLimit
	took                 time.Duration // the whole measurement
	haveIdle, haveKill   bool
	err                  error
}

type result struct {
	peer    peer
	n       int
	samples []sample
	skipped string // why the peer was not measured (not installed, the budget spent), or ""
}

// kills is the number of children SIGKILLed one at a time per run; after
// killBudget, and at least minKills, no more.
const (
	kills      = 20
	minKills   = 5
	killBudget = 10 * time.Second
)

// warm is how long the driver warms up before the first kill (-warm-driver).
var warm time.Duration

func main() {
	ns := flag.String("n", "100,1000", "comma-separated child counts")
	runsFlag := flag.String("runs", "3", "runs per peer, one value or one per count")
	slowFlag := flag.String("runs-peers", "", "runs of the other supervisors (supervisord, s6, runit, pm2: one to four minutes per run at N = 1,000), one value or one per count; default -runs")
	idleFlag := flag.String("idle", "60s", "idle window for CPU and memory, one value or one per count")
	only := flag.String("peers", "baseline,plugs,supervisord,s6,runit,pm2", "peers to measure")
	plugsBin := flag.String("plugs", "bin/plugs", "plugs binary")
	baseBin := flag.String("baseline", "bin/baseline", "baseline binary")
	pm2Bin := flag.String("pm2", "bench/.peers/node_modules/.bin/pm2", "pm2 binary")
	out := flag.String("o", "BENCHMARKS.md", "report file")
	work := flag.String("work", "", "work directory (default a temp dir)")
	readme := flag.String("readme", "README.md", "README whose \"Cost of the capabilities\" table the report quotes (\"\": none)")
	budget := flag.Duration("budget", 0, "a run of a peer that would start after this much of the whole run has passed is skipped and reported so (0: no budget)")
	flag.DurationVar(&warm, "warm-driver", 0, "keep the driver's restart poll busy this long before the first kill after the idle window (0: the driver wakes from the idle window as the supervisor does)")
	flag.DurationVar(&convergeLimit, "converge-limit", convergeLimit, "longest wait for a peer's converge (its apply command included); a capped figure is reported with \">\"")
	flag.DurationVar(&startLimit, "start-limit", startLimit, "longest wait for a peer's cold start; a peer that did not start all children by then is reported failed")
	flag.Parse()
	load0 := loadAvg()
	stopOnSignal()

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
	unavailable := map[string]string{}
	for _, name := range strings.Split(*only, ",") {
		p, ok := all[strings.TrimSpace(name)]
		if !ok {
			fatal(fmt.Errorf("unknown peer %q", name))
		}
		if err := p.available(); err != nil {
			fmt.Fprintf(os.Stderr, "skip %s: %v\n", p.name(), err)
			unavailable[p.name()] = fmt.Sprintf("not measured: %v", err)
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
		idle, err := time.ParseDuration(idleList[i])
		if err != nil {
			fatal(fmt.Errorf("bad -idle %q", idleList[i]))
		}
		slowRuns, err := strconv.Atoi(slowList[i])
		if err != nil || slowRuns < 1 {
			fatal(fmt.Errorf("bad -runs-peers %q", slowList[i]))
		}
		desc := fmt.Sprintf("%d runs at N=%d", runs, n)
		if slowRuns != runs {
			desc += fmt.Sprintf(" (%d of supervisord, s6, runit and pm2)", slowRuns)
		}
		runsDesc = append(runsDesc, desc)
		idleDesc = append(idleDesc, fmt.Sprintf("%v at N=%d", idle, n))
		byPeer := make([]*result, len(peers))
		for j, p := range peers {
			byPeer[j] = &result{peer: p, n: n, skipped: unavailable[p.name()]}
			results = append(results, byPeer[j])
		}
		// Round by round, every peer once per round, the baseline first:
		// each ratio is to a baseline measured minutes, not a quarter of
		// an hour, before, on a machine in the same state.
		for r := 0; r < max(runs, slowRuns); r++ {
			for _, res := range byPeer {
				p := res.peer
				peerRuns := runs
				if slowPeers[p.name()] {
					peerRuns = slowRuns
				}
				if r >= peerRuns || res.skipped != "" {
					continue
				}
				if *budget > 0 && time.Since(started) > *budget {
					res.skipped = fmt.Sprintf("run %d and later not measured: the run's budget of %v was spent", r+1, *budget)
					if r == 0 {
						res.skipped = fmt.Sprintf("not measured: the run's budget of %v was spent before its turn", *budget)
					}
					fmt.Fprintf(os.Stderr, "%s n=%d: %s\n", p.name(), n, res.skipped)
					continue
				}
				dir := filepath.Join(root, fmt.Sprintf("%s-%d-%d", p.name(), n, r))
				t0 := time.Now()
				s := measure(p, dir, n, r == 0, idle)
				s.took = time.Since(t0)
				if s.err != nil {
					fmt.Fprintf(os.Stderr, "%s n=%d run %d: %v\n", p.name(), n, r, s.err)
				}
				res.samples = append(res.samples, s)
				fmt.Fprintf(os.Stderr, "%-11s n=%-5d run %d (%v): cold %v (present %v) restart first %v, %v (worst %v) converge %v (unneeded %d) stop %v (exited %v) idle %.2f%% rss %d KiB orphans %d\n",
					p.name(), n, r, s.took.Round(time.Second), s.cold.Round(time.Millisecond), s.coldPresent.Round(time.Millisecond),
					s.firstRestart.Round(time.Microsecond*10), median(s.restarts).Round(time.Microsecond*10), worst(s.restarts).Round(time.Microsecond*10),
					s.converge.Round(time.Millisecond), s.unneeded, s.stop.Round(time.Millisecond), s.exited.Round(time.Millisecond),
					s.idleCPU, s.rssKiB, s.orphans)
			}
		}
	}
	left := leftBehind()
	info := runInfo{
		runs: strings.Join(runsDesc, ", "), idle: strings.Join(idleDesc, ", "),
		took: time.Since(started), args: os.Args[1:], load0: load0, load1: loadAvg(),
		nofile: nofileLimit(), left: left, warm: warm,
	}
	if *readme != "" {
		if b, err := os.ReadFile(*readme); err == nil {
			info.costRows = costRows(string(b))
		}
	}
	if err := os.WriteFile(*out, []byte(render(results, info)), 0o644); err != nil {
		fatal(err)
	}
	fmt.Fprintf(os.Stderr, "wrote %s in %v\n", *out, time.Since(started).Round(time.Second))
	if left > 0 {
		fatal(fmt.Errorf("%d benchmark children still running after the run", left))
	}
}

// slowPeers take one to four minutes per run at N = 1,000 where baseline
// and plugs take half a minute (supervisord's cold start, update and stop,
// pm2's startOrRestart and kill, s6's and supervisord's 1 s restarts):
// -runs-peers bounds them, so that baseline and plugs get more runs.
var slowPeers = map[string]bool{"supervisord": true, "s6": true, "runit": true, "pm2": true}

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
	defer func() {
		if w.late > 0 {
			fmt.Fprintf(os.Stderr, "  %d of %d children exec'd sleep over 500 ms after their fork\n", w.late, len(want))
		}
	}()
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
// reaped is when old's /proc entry went away: the supervisor woke and
// waited for it (the rest is its fork and exec of the replacement).
func waitRestart(marker string, old int, before map[int]bool, limit time.Duration) (total, reaped time.Duration, err error) {
	start := time.Now()
	deadline := start.Add(limit)
	oldProc := "/proc/" + strconv.Itoa(old)
	for {
		if reaped == 0 {
			if _, err := os.Stat(oldProc); err != nil {
				reaped = time.Since(start)
			}
		}
		for _, pid := range listPIDs() {
			if !before[pid] && pid != old && markerOf(pid, marker) == marker {
				total = time.Since(start)
				if reaped == 0 {
					reaped = total
				}
				return total, reaped, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("%s not restarted after %v", marker, limit)
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// warmDriver runs the restart poll's loop for d without timing anything,
// so that the first kill after the idle window finds the driver awake:
// set by -warm-driver, to tell the driver's own wake-up from the
// supervisor's in that first figure.
func warmDriver(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		_ = listPIDs()
		time.Sleep(200 * time.Microsecond)
	}
}

func measure(p peer, dir string, n int, first bool, idle time.Duration) (s sample) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.err = err
		return s
	}
	time.Sleep(2 * time.Second) // what the previous measurement left settles
	prefix := newPrefix()
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
	track(rootPid)
	running, err := waitSet(prefix, markers(gen0), startLimit)
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
			s.maxFDs = max(s.maxFDs, openFDs(pid))
		}
		s.haveIdle = true
	}

	// Restart latency: SIGKILL 20 distinct children, one at a time; the
	// first one after the idle window is reported apart (issue 17: it took
	// 17–57 ms in half the runs, the others 3–7 ms).
	killsStart := time.Now()
	for k, i := range rand.Perm(n)[:min(kills, n)] {
		if k > minKills && time.Since(killsStart) > killBudget {
			break // a peer that waits ~1 s before each restart (s6, supervisord)
		}
		m := gen0[i].marker
		old := running[m]
		before := map[int]bool{}
		for _, pid := range listPIDs() {
			before[pid] = true
		}
		if k == 0 && first && warm > 0 {
			warmDriver(warm)
		}
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			s.err = err
			return s
		}
		d, reaped, err := waitRestart(m, old, before, time.Minute)
		if err != nil {
			s.err = fmt.Errorf("restart: %w", err)
			return s
		}
		if k == 0 && first {
			s.firstRestart, s.firstReaped, s.haveFirst = d, reaped, true
		} else {
			s.restarts = append(s.restarts, d)
			s.reaped = append(s.reaped, reaped)
		}
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
	if err := p.apply(dir, gen0, next, t0.Add(convergeLimit)); errors.Is(err, errTimedOut) {
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
	track(rootPid)
	if _, err := waitSet(prefix, markers(next), startLimit); err != nil {
		s.err = fmt.Errorf("second start: %w", err)
		return s
	}
	s.coldPresent = time.Since(t0)
	helpers = tree(rootPid, prefix)
	if first {
		// The supervisor SIGKILLed with its N children running: how many
		// are left a second later. The second start serves, a third
		// would cost a cold start more (20-40 s for supervisord and pm2).
		time.Sleep(time.Second)
		helpers = tree(rootPid, prefix)
		if err := syscall.Kill(rootPid, syscall.SIGKILL); err != nil {
			s.err = fmt.Errorf("kill test: %w", err)
			return s
		}
		time.Sleep(time.Second)
		s.orphans, s.haveKill = len(scanMarkers(prefix)), true
	}
	cleanup(prefix, rootPid, helpers)
	rootPid, helpers = 0, nil
	return s
}

const clkTck = 100 // USER_HZ on Linux

// convergeLimit bounds the wait for a peer to converge, so that one slow
// peer cannot take the whole run's time; a capped figure is reported as ">".
var convergeLimit = 30 * time.Second

// startLimit bounds the wait for a cold start.
var startLimit = 3 * time.Minute

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
	defer untrack(root)
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
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
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

// The run's bookkeeping of what it started, for leftBehind and for a
// driver stopped by a signal: the prefix of every child marker and the
// root pid of every supervisor.
var (
	startedMu sync.Mutex
	prefixes  []string
	rootPids  []int
)

// newPrefix is a marker prefix of this run's own, recorded.
func newPrefix() string {
	startedMu.Lock()
	defer startedMu.Unlock()
	p := fmt.Sprintf("99999.%04d", rand.IntN(10000))
	prefixes = append(prefixes, p)
	return p
}

func track(root int) {
	startedMu.Lock()
	defer startedMu.Unlock()
	rootPids = append(rootPids, root)
}

// untrack forgets a root that cleanup has stopped: its pid may be reused.
func untrack(root int) {
	startedMu.Lock()
	defer startedMu.Unlock()
	for i, r := range rootPids {
		if r == root {
			rootPids = append(rootPids[:i], rootPids[i+1:]...)
			return
		}
	}
}

// leftBehind counts the children of this run still running: none should.
func leftBehind() int {
	startedMu.Lock()
	ps := append([]string(nil), prefixes...)
	startedMu.Unlock()
	n := 0
	for _, p := range ps {
		n += len(scanMarkers(p))
	}
	return n
}

// stopOnSignal makes SIGINT, SIGTERM and SIGHUP of the driver (make bench
// interrupted, a timeout) kill what the run started, by pid, before it
// exits: every supervisor and its own processes, every child of a marker
// of this run.
func stopOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		sig := <-ch
		fmt.Fprintf(os.Stderr, "sidebyside: %v: stopping what this run started\n", sig)
		startedMu.Lock()
		ps, roots := append([]string(nil), prefixes...), append([]int(nil), rootPids...)
		startedMu.Unlock()
		for _, r := range roots {
			if alive(r) {
				var helpers []int
				if len(ps) > 0 {
					helpers = tree(r, ps[len(ps)-1])
				}
				for _, pid := range append([]int{r}, helpers...) {
					if pid > 1 {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
		}
		for _, p := range ps {
			cleanup(p, 0, nil)
		}
		os.Exit(2)
	}()
}

// nofileLimit is the driver's open-file limit, soft/hard, which every
// supervisor it starts inherits.
func nofileLimit() string {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%d/%d", l.Cur, l.Max)
}
