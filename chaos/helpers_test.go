package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/runner"
)

// waitBound bounds every wait of the suite: a guard against hanging, never
// an assertion about speed.
const waitBound = 60 * time.Second

// figure prints a test's figure to the test log and, as "CHAOS name: ...",
// to stdout, where `make chaos` (go test -v) shows it.
func figure(t *testing.T, name, format string, args ...any) {
	t.Helper()
	s := fmt.Sprintf(format, args...)
	t.Logf("CHAOS %s: %s", name, s)
	fmt.Printf("CHAOS %s: %s\n", name, s)
}

// runID is a marker unique to one test, put in the environment (CHAOS_RUN)
// and the argv of every plugin it starts, so that a scan of /proc finds
// them and nothing else.
func runID(t *testing.T) string {
	return fmt.Sprintf("chaos-%d-%d", os.Getpid(), time.Now().UnixNano())
}

// writeFiles writes files (path relative to dir → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// writeAtomic replaces name the way careful editors save: a temporary file
// in the same directory, renamed over it.
func writeAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".save-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// waitFor polls cond until it holds, failing the test after waitBound with
// cond's last description of what it saw.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	last := ""
	for {
		ok, desc := cond()
		if ok {
			return
		}
		last = desc
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last seen: %s", what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// plugsd is one plugs daemon process the test started.
type plugsd struct {
	t        *testing.T
	dir      string // where plugs.hcl is
	stateDir string
	cmd      *exec.Cmd
	logPath  string
	done     chan struct{}
	err      error // of Wait, once done is closed
}

// startDaemon starts `plugs run` on dir/plugs.hcl with free ports. With a
// wrapper (e.g. sh -c 'ulimit ...; exec "$@"' sh) the daemon runs through
// it. Its stderr goes to dir/daemon-<n>.log. It is SIGKILLed at the end of
// the test if still running.
func startDaemon(t *testing.T, dir string, wrapper ...string) *plugsd {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "daemon-*.log"))
	logPath := filepath.Join(dir, fmt.Sprintf("daemon-%02d.log", len(logs)))
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own descriptor
	argv := append(append([]string{}, wrapper...), plugsBin, "run", "-f", "plugs.hcl", "--state-dir", ".plugs",
		"--metrics-addr", "127.0.0.1:0", "--broker-addr", "127.0.0.1:0", "--ui-addr", "127.0.0.1:0", "--log-level", "debug",
		"--sandbox=false") // the sandbox's plugin users could not reach the tests' 0700 folders
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	d := &plugsd{t: t, dir: dir, stateDir: filepath.Join(dir, ".plugs"), cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.kill()
		d.checkRaces()
	})
	return d
}

func (d *plugsd) pid() int { return d.cmd.Process.Pid }

// kill SIGKILLs the daemon and waits for it.
func (d *plugsd) kill() {
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
}

// stop SIGTERMs the daemon and waits for it to exit; it returns its log.
func (d *plugsd) stop() string {
	d.t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(waitBound):
		d.t.Errorf("daemon %d did not stop within %s of SIGTERM", d.pid(), waitBound)
		d.kill()
	}
	return d.log()
}

func (d *plugsd) log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// checkRaces fails the test when the race detector reported in the log.
func (d *plugsd) checkRaces() {
	if log := d.log(); strings.Contains(log, "WARNING: DATA RACE") {
		d.t.Errorf("the daemon %d reported a data race; its log (%s):\n%s", d.pid(), d.logPath, log)
	}
}

// exited reports whether the daemon process has exited.
func (d *plugsd) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// status asks the daemon for its status over its socket; nil when it does
// not answer (yet).
func (d *plugsd) status() *api.Status {
	c, err := api.Dial(d.stateDir)
	if err != nil {
		return nil
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil || st.Daemon.PID != d.pid() {
		return nil
	}
	return st
}

// waitReady waits until the daemon answers and has reconciled once; it
// returns that status.
func (d *plugsd) waitReady() *api.Status {
	d.t.Helper()
	var st *api.Status
	waitFor(d.t, "the daemon to answer", func() (bool, string) {
		if d.exited() {
			d.t.Fatalf("the daemon exited: %v; its log:\n%s", d.err, d.log())
		}
		st = d.status()
		return st != nil && st.Daemon.LastReconcile != nil, "no status"
	})
	return st
}

// waitInstances waits until cond holds for the instances of the status.
func (d *plugsd) waitInstances(what string, cond func(map[string]api.InstanceStatus) bool) map[string]api.InstanceStatus {
	d.t.Helper()
	var insts map[string]api.InstanceStatus
	waitFor(d.t, what, func() (bool, string) {
		st := d.status()
		if st == nil {
			return false, "no status"
		}
		insts = byID(st)
		return cond(insts), describe(st)
	})
	return insts
}

func byID(st *api.Status) map[string]api.InstanceStatus {
	m := map[string]api.InstanceStatus{}
	for _, i := range st.Instances {
		m[i.Plug+"/"+i.Instance] = i
	}
	return m
}

// describe is a one-line summary of a status, for failure messages.
func describe(st *api.Status) string {
	var b strings.Builder
	if r := st.Daemon.LastReconcile; r != nil && r.Error != "" {
		fmt.Fprintf(&b, "last reconcile failed: %s; ", r.Error)
	}
	for _, i := range st.Instances {
		fmt.Fprintf(&b, "%s/%s=%s(pid %d, restarts %d, %s) ", i.Plug, i.Instance, i.State, i.PID, i.Restarts, i.Reason)
	}
	return b.String()
}

// allRunning is a condition of waitInstances: exactly ids, each running.
func allRunning(ids []string) func(map[string]api.InstanceStatus) bool {
	return func(m map[string]api.InstanceStatus) bool {
		if len(m) != len(ids) {
			return false
		}
		for _, id := range ids {
			if i, ok := m[id]; !ok || i.State != "running" || i.PID <= 0 {
				return false
			}
		}
		return true
	}
}

// metric fetches the daemon's /metrics and returns the value of the sample
// whose line starts with series (name and labels as exposed, e.g.
// `go_goroutines` or `plugs_reconcile_total{result="error"}`).
func metric(t *testing.T, addr, series string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	defer http.DefaultClient.CloseIdleConnections()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return v
		}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	t.Fatalf("metric %s not exposed by %s", series, addr)
	return 0
}

// proc is one process seen in /proc.
type proc struct {
	PID, PPID, PGID int
	State           string // R, S, Z...
	Cmdline         []string
	Env             map[string]string
}

// readProc reads a process's stat, argv and environment.
func readProc(pid int) (proc, error) {
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return proc{}, err
	}
	// comm, in parentheses, may hold spaces: the fields follow the last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return proc{}, errors.New("bad stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 3 {
		return proc{}, errors.New("bad stat")
	}
	p := proc{PID: pid, State: f[0], Env: map[string]string{}}
	p.PPID, _ = strconv.Atoi(f[1])
	p.PGID, _ = strconv.Atoi(f[2])
	if b, err := os.ReadFile(dir + "/cmdline"); err == nil {
		p.Cmdline = strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	}
	if b, err := os.ReadFile(dir + "/environ"); err == nil {
		for _, kv := range strings.Split(string(b), "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				p.Env[k] = v
			}
		}
	}
	return p, nil
}

// marked lists the live (non-zombie) processes whose environment has
// CHAOS_RUN=id: every process a test's plugins started, grandchildren
// included.
func marked(id string) []proc {
	ents, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, err := readProc(pid)
		if err != nil || p.State == "Z" || p.Env["CHAOS_RUN"] != id {
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

// killMarked SIGKILLs, by pid, every process left with CHAOS_RUN=id, so
// that a failed test leaves nothing behind.
func killMarked(id string) {
	for _, p := range marked(id) {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
}

// instanceFiles parses every instance.json under stateDir; it returns them
// by "plug/instance" and the errors of those that do not parse.
func instanceFiles(stateDir string) (map[string]*runner.InstanceFile, []error) {
	names, _ := filepath.Glob(filepath.Join(stateDir, "instances", "*", "*", "instance.json"))
	files := map[string]*runner.InstanceFile{}
	var errs []error
	for _, n := range names {
		f, err := runner.ReadInstanceFile(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		files[f.Plug+"/"+f.Instance] = f
	}
	return files, errs
}

// procStatus reads a field of /proc/<pid>/status in kB (e.g. VmRSS).
func procStatusKB(pid int, field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.Fields(rest)[0])
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// openFDs counts the open file descriptors of pid.
func openFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// jitter returns a random duration in [lo, hi).
func jitter(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rand.Int64N(int64(hi-lo)))
}
