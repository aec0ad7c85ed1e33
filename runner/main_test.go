package runner

import (
	"golang.org/x/sys/unix"

	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/testplugin"
	"github.com/plugs-dev/plugs/sandbox"
)

func TestMain(m *testing.M) {
	sandbox.MaybeExec() // the sandbox shim (sandbox_test.go)
	// The fake plugin (testplugin's modes), and two of the runner's own:
	//
	//	supervisor DIR N PIDFILE  run a Runner on DIR with N sleeping instances and a grandchild one, print "ready", sleep
	//	churn DIR N           run a Runner with N instances crashing and restarting forever
	//	slowexit BYTES        touch BYTES of memory, print "ready", sleep (slow to exit when killed)
	//	confined PATH ADDR    print "id UID", "write ERR" for PATH, "connect ERR" for ADDR, "tmp ERR" for a file in TMPDIR, "config ERR", "input TEXT", "cgroup LINE" for each of /proc/self/cgroup, exit
	//	forkn N               fork up to N "sleep 300" children, print "forked N ERRNO", exit
	//	escape PIDFILE        start "sleep 300" in a new session with an empty environment, write its pid, exit
	testplugin.Main(m, map[string]testplugin.Mode{
		"supervisor": func(args []string) int { return supervise("supervisor", args) },
		"churn":      func(args []string) int { return supervise("churn", args) },
		"slowexit":   slowExit,
		"confined":   confined,
		"forkn":      forkN,
		"escape":     escape,
	})
}

// slowExit is the slowexit mode: a process whose exit, once killed, takes a while
// (its memory is freed in the exit).
func slowExit(args []string) int {
	n, _ := strconv.Atoi(args[0])
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	// Small pages: huge ones would be freed at once.
	_ = unix.Madvise(b, unix.MADV_NOHUGEPAGE)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	fmt.Println("ready")
	time.Sleep(time.Hour)
	return int(b[0]) - 1
}

// confined is the confined mode: what a run may do and where it runs.
func confined(args []string) int {
	fmt.Println("id", os.Getuid())
	fmt.Println("write", testplugin.ErrName(os.WriteFile(args[0], []byte("x"), 0o600)))
	c, err := net.DialTimeout("tcp", args[1], 5*time.Second)
	if err == nil {
		c.Close()
	}
	fmt.Println("connect", testplugin.ErrName(err))
	fmt.Println("tmp", testplugin.ErrName(os.WriteFile(filepath.Join(os.Getenv("TMPDIR"), "x"), []byte("x"), 0o600)))
	_, err = os.ReadFile(os.Getenv("PLUGS_CONFIG"))
	fmt.Println("config", testplugin.ErrName(err))
	in, err := os.ReadFile(os.Getenv("PLUGS_INPUT"))
	fmt.Printf("input %s %s\n", testplugin.ErrName(err), in)
	own, _ := os.ReadFile("/proc/self/cgroup")
	for l := range strings.Lines(string(own)) {
		fmt.Print("cgroup ", l)
	}
	return 0
}

// forkN is the forkn mode: a bounded fork loop.
func forkN(args []string) int {
	n, _ := strconv.Atoi(args[0])
	done, why := 0, "none"
	for range n {
		if err := exec.Command("sleep", "300").Start(); err != nil {
			why = testplugin.ErrName(errors.Unwrap(err))
			break
		}
		done++
	}
	fmt.Println("forked", done, why)
	return 0
}

// escape is the escape mode: a grandchild that neither the process group
// nor the environment (PLUGS_RUN_ID, PLUGS_CONFIG) names.
func escape(args []string) int {
	cmd := exec.Command("sleep", "300")
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Println("escape:", err)
		return 3
	}
	if err := os.WriteFile(args[0], []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		fmt.Println("escape:", err)
		return 3
	}
	return 0
}

// supervise is the supervisor and churn modes.
func supervise(mode string, args []string) int {
	n, _ := strconv.Atoi(args[1])
	r, err := New(Options{StateDir: args[0]})
	if err != nil {
		fmt.Println(err)
		return 3
	}
	specs := make([]instance.Spec, n)
	for i := range specs {
		id := fmt.Sprintf("i%d", i)
		if mode == "supervisor" {
			specs[i] = fakeSpec(fmt.Sprintf("p%d", i%3), id, "sleep")
		} else {
			specs[i] = fakeSpec(fmt.Sprintf("p%d", i%3), id, "exit", "1")
			specs[i].Restart = instance.RestartPolicy{InitialDelay: time.Millisecond, MaxDelay: time.Millisecond}
		}
	}
	if mode == "supervisor" {
		specs = append(specs, fakeSpec("gc", "default", "grandchild", args[2]))
	}
	for _, s := range specs {
		if err := r.Start(context.Background(), s); err != nil {
			fmt.Println(err)
			return 3
		}
	}
	fmt.Println("ready")
	time.Sleep(time.Hour)
	return 0
}

// fakeSpec is a spec that runs the fake plugin in mode.
func fakeSpec(plug, inst, mode string, args ...string) instance.Spec {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	config := fmt.Appendf(nil, `{"plug":%q,"instance":%q,"secret":"s3cret"}`, plug, inst)
	return instance.Spec{
		ID:       instance.ID{Plug: plug, Instance: inst},
		UUID:     "uuid-" + plug,
		Version:  "1.0.0",
		Revision: "abc123",
		Dir:      filepath.Dir(exe),
		Command:  append([]string{exe}, args...),
		// The race detector's one-second sleep at exit would slow every stop.
		Env:         map[string]string{testplugin.Env: mode, "GORACE": "atexit_sleep_ms=0"},
		Config:      config,
		ConfigHash:  "hash-" + inst,
		StopTimeout: 5 * time.Second,
		Restart:     documentedDefaults,
	}
}

// statuses collects observer notifications for tests.
type statuses struct {
	mu   sync.Mutex
	cond *sync.Cond
	last map[instance.ID]instance.Status
	all  []instance.Status
}

func newStatuses() *statuses {
	s := &statuses{last: map[instance.ID]instance.Status{}}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *statuses) observe(st instance.Status) {
	s.mu.Lock()
	s.last[st.ID] = st
	s.all = append(s.all, st)
	s.mu.Unlock()
	s.cond.Broadcast()
}

// await blocks until the latest status of id satisfies ok, and returns it.
// It is bounded by the test's deadline through the runner's own progress:
// a test that never gets there times out in go test.
func (s *statuses) await(t *testing.T, id instance.ID, what string, ok func(instance.Status) bool) instance.Status {
	t.Helper()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			s.cond.Broadcast()
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if st, found := s.last[id]; found && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never %s; last %+v", id, what, s.last[id])
		}
		s.cond.Wait()
	}
}

// newTestRunner returns a Runner on a temporary state dir, closed at the
// end of the test.
func newTestRunner(t *testing.T, opts Options) (*Runner, *statuses) {
	t.Helper()
	st := newStatuses()
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	if opts.Observer == nil {
		opts.Observer = st.observe
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return r, st
}

// gone reports whether pid has exited (a zombie counts as gone).
func gone(pid int) bool {
	st, err := readProcStat(pid)
	return err != nil || st.State == 'Z'
}

// eventually polls cond every 10ms for up to 10s: for facts outside the
// runner's events (other processes, files). It asserts no timing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}

// awaitReady waits until the instance's output holds n lines "ready": its
// n-th process has installed its signal handlers.
func awaitReady(t *testing.T, r *Runner, id instance.ID, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s ready %d times", id, n), func() bool {
		b, _ := os.ReadFile(filepath.Join(InstanceDir(r.opts.StateDir, id), "output.log"))
		return strings.Count(string(b), "ready\n") >= n
	})
}
