package runner

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/sandbox"
	"go.uber.org/goleak"
)

// fakeEnv selects the fake plugin mode: the test binary re-executes itself
// as the child process (Nomad's testtask).
const fakeEnv = "RUNNER_TEST_FAKE"

func TestMain(m *testing.M) {
	sandbox.MaybeExec() // the sandbox shim (sandbox_test.go)
	if mode := os.Getenv(sandboxFakeEnv); mode != "" {
		os.Exit(sandboxFake(mode, os.Args[1:]))
	}
	if mode := os.Getenv(fakeEnv); mode != "" {
		os.Exit(fake(mode, os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// fake is the fake plugin. Modes:
//
//	sleep                 sleep until killed
//	exit CODE             exit at once
//	usr1                  print "ready", exit 1 on SIGUSR1
//	ignoreterm            ignore SIGTERM, sleep
//	grandchild PIDFILE    start a grandchild in the group (ignoring SIGTERM), write its pid, ignore SIGTERM
//	flood                 write to stdout as fast as possible
//	closeout              close stdout and stderr, then sleep
//	late                  print "ready" late, then sleep
//	env                   print PLUGS_* and the config, then sleep
//	printenv              print the whole environment, one variable a line, then "ready", then sleep
//	trap FILE             record every signal received in FILE, sleep
//	termlog FILE NAME     print "ready"; on SIGTERM append NAME to FILE and exit
//	orphaner PIDFILE MODE start a grandchild in the group in MODE, write its pid, exit
//	daemonize PIDFILE [exit]  start a child in a new session that starts a grandchild in another new
//	                      session (ignoring SIGTERM) and exits; write the grandchild's pid; print
//	                      "ready" and sleep (or exit 0 with "exit")
//	setsidchild PIDFILE   (daemonize's child) start the grandchild with setsid, write its pid, exit
//	supervisor DIR N PIDFILE  run a Runner on DIR with N sleeping instances and a grandchild one, print "ready", sleep
//	churn DIR N           run a Runner with N instances crashing and restarting forever
func fake(mode string, args []string) int {
	switch mode {
	case "sleep":
		time.Sleep(time.Hour)
	case "exit":
		code, _ := strconv.Atoi(args[0])
		return code
	case "usr1":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGUSR1)
		fmt.Println("ready")
		<-c
		return 1
	case "ignoreterm":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "grandchild":
		signal.Ignore(syscall.SIGTERM)
		gc := exec.Command(os.Args[0])
		gc.Env = append(os.Environ(), fakeEnv+"=ignoreterm")
		if err := gc.Start(); err != nil {
			return 3
		}
		if err := os.WriteFile(args[0], []byte(strconv.Itoa(gc.Process.Pid)), 0o600); err != nil {
			return 3
		}
		time.Sleep(time.Hour)
	case "orphaner":
		gc := exec.Command(os.Args[0])
		gc.Env = append(os.Environ(), fakeEnv+"="+args[1])
		if err := gc.Start(); err != nil {
			return 3
		}
		if err := os.WriteFile(args[0], []byte(strconv.Itoa(gc.Process.Pid)), 0o600); err != nil {
			return 3
		}
	case "daemonize":
		c := exec.Command(os.Args[0], args[0])
		c.Env = append(os.Environ(), fakeEnv+"=setsidchild")
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Run(); err != nil {
			return 3
		}
		fmt.Println("ready")
		if len(args) > 1 && args[1] == "exit" {
			return 0
		}
		time.Sleep(time.Hour)
	case "setsidchild":
		gc := exec.Command(os.Args[0])
		gc.Env = append(os.Environ(), fakeEnv+"=ignoreterm")
		gc.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := gc.Start(); err != nil {
			return 3
		}
		if err := os.WriteFile(args[0], []byte(strconv.Itoa(gc.Process.Pid)), 0o600); err != nil {
			return 3
		}
	case "flood":
		line := []byte(strings.Repeat("x", 1023) + "\n")
		for {
			if _, err := os.Stdout.Write(line); err != nil {
				return 2
			}
		}
	case "closeout":
		os.Stdout.Close()
		os.Stderr.Close()
		time.Sleep(time.Hour)
	case "late":
		time.Sleep(100 * time.Millisecond)
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "env":
		cfg, err := os.ReadFile(os.Getenv("PLUGS_CONFIG"))
		fmt.Printf("plug=%s instance=%s extra=%s err=%v config=%s\n",
			os.Getenv("PLUGS_PLUG"), os.Getenv("PLUGS_INSTANCE"), os.Getenv("EXTRA"), err, cfg)
		fmt.Fprintln(os.Stderr, "to stderr")
		time.Sleep(time.Hour)
	case "printenv":
		for _, kv := range os.Environ() {
			fmt.Println(kv)
		}
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "trap":
		c := make(chan os.Signal, 16)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT)
		if err := os.WriteFile(args[0], nil, 0o600); err != nil {
			return 3
		}
		for s := range c {
			f, _ := os.OpenFile(args[0], os.O_APPEND|os.O_WRONLY, 0)
			fmt.Fprintln(f, s)
			f.Close()
		}
	case "termlog":
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		<-c
		f, _ := os.OpenFile(args[0], os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
		fmt.Fprintln(f, args[1])
		f.Close()
		return 0
	case "supervisor", "churn":
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
	}
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
		Env:         map[string]string{fakeEnv: mode, "GORACE": "atexit_sleep_ms=0"},
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
