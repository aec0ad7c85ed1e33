// Package testplugin is the one fake plugin of the tests that start child
// processes (Nomad's testtask): the test binary itself, started with Env
// naming a mode, acts as a plugin that sleeps, exits with a code, ignores
// SIGTERM, forks a grandchild, notifies readiness, holds memory, probes
// files and ports, … (see Modes), instead of each package keeping a copy.
//
// A package's TestMain calls Main (or Run, then its own m.Run); a test
// starts Command(mode, args...) or sets Env=mode in a spec's environment
// with os.Args[0] (Self) as the program. A package may add modes of its own
// (a runner supervising instances) through Main's extra argument.
//
// It is for tests only, and starts nothing unless Env is set.
package testplugin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/goleak"
)

// Env names the mode the test binary runs as; its arguments are the
// process's arguments.
const Env = "PLUGS_TEST_PLUGIN"

// NoRaceSleep is the environment entry that spares a plugin built with the
// race detector its one-second sleep at exit, which would slow every stop.
const NoRaceSleep = "GORACE=atexit_sleep_ms=0"

// Mode is a fake plugin: it gets the process's arguments and returns its
// exit code.
type Mode func(args []string) int

// Main runs the test binary as the plugin Env names (with the modes of
// Modes and extra) and exits, or else runs the tests with a goroutine leak
// check.
func Main(m *testing.M, extra map[string]Mode) {
	Run(extra)
	goleak.VerifyTestMain(m)
}

// Run runs the test binary as the plugin Env names and exits; it returns
// when Env is unset.
func Run(extra map[string]Mode) {
	for name := range extra {
		if _, ok := modes[name]; ok {
			// A test's own mode would shadow the one every other test of
			// the package means by that name.
			panic("testplugin: an extra mode named " + name + " shadows the built-in one")
		}
	}
	mode, ok := os.LookupEnv(Env)
	if !ok {
		return
	}
	os.Exit(run(mode, os.Args[1:], extra))
}

func run(mode string, args []string, extra map[string]Mode) int {
	if f, ok := extra[mode]; ok {
		return f(args)
	}
	if f, ok := modes[mode]; ok {
		return f(args)
	}
	fmt.Fprintln(os.Stderr, "testplugin: unknown mode", mode)
	return 2
}

// Self is the test binary's path, the program of every fake plugin.
func Self() string {
	exe, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return exe
}

// Command is the test binary as the plugin mode with args, with the test's
// environment and NoRaceSleep.
func Command(mode string, args ...string) *exec.Cmd {
	cmd := exec.Command(Self(), args...)
	cmd.Env = append(os.Environ(), Env+"="+mode, NoRaceSleep)
	return cmd
}

// Modes lists the built-in modes and what each does.
var Modes = map[string]string{
	"sleep":       "sleep until killed",
	"ready":       `print "ready", sleep until killed`,
	"late":        `sleep 100ms, print "ready", sleep until killed`,
	"exit":        "exit CODE: exit at once with CODE",
	"usr1":        `print "ready", exit 1 on SIGUSR1`,
	"ignoreterm":  `ignore SIGTERM, print "ready", sleep`,
	"grandchild":  "grandchild PIDFILE: start an ignoreterm grandchild in the group, write its pid, ignore SIGTERM, sleep",
	"orphaner":    "orphaner PIDFILE MODE: start a grandchild in the group in MODE, write its pid, exit",
	"daemonize":   `daemonize PIDFILE [exit]: a child in a new session starts an ignoreterm grandchild in another and exits; the grandchild's pid in PIDFILE; print "ready", sleep (or exit 0)`,
	"setsidchild": "setsidchild PIDFILE: (daemonize's child) start an ignoreterm grandchild with setsid, write its pid, exit",
	"setsid":      `setsid PIDFILE: a setsid'd, double-forked "sleep 300"; its pid in PIDFILE (or printed when PIDFILE is "-"); print "ready", sleep`,
	"flood":       "write 1 KiB lines to stdout as fast as possible",
	"closeout":    "close stdout and stderr, sleep",
	"env":         "print PLUGS_PLUG, PLUGS_INSTANCE, EXTRA and the config file, sleep",
	"printenv":    `print the environment, one variable a line, then "ready", sleep`,
	"trap":        "trap FILE: append every signal received to FILE, forever",
	"termlog":     `termlog FILE NAME: print "ready"; on SIGTERM append NAME to FILE and exit 0`,
	"hog":         `allocate and touch 4 MiB at a time (64 GiB at most), then print "not killed N"`,
	"hold":        `hold MIB: make MIB MiB resident, print "ready", sleep`,
	"forkbomb":    `fork "sleep 300" children until refused (10,000 at most), print "forked N ERRNO", sleep`,
	"id":          `id [sleep]: print "id UID GID [GROUPS]", exit (or sleep)`,
	"probe":       `probe PATH ADDR: print "write ERR" for writing PATH and "connect ERR" for ADDR, sleep`,
	"write":       `write FILE...: print "FILE ERR" for each`,
	"connect":     `connect ADDR...: print "ADDR ERR" for each`,
	"listen":      `listen ADDR...: print "ADDR ERR" for each (plain TCP)`,
	"notify":      "notify STATE: send STATE with sd_notify (go-systemd), sleep",
}

var modes = map[string]Mode{
	"sleep": func([]string) int { return sleep() },
	"ready": func([]string) int { fmt.Println("ready"); return sleep() },
	"late": func([]string) int {
		time.Sleep(100 * time.Millisecond)
		fmt.Println("ready")
		return sleep()
	},
	"exit": func(args []string) int {
		code, _ := strconv.Atoi(arg(args, 0))
		return code
	},
	"usr1": func([]string) int {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGUSR1)
		fmt.Println("ready")
		<-c
		return 1
	},
	"ignoreterm": func([]string) int {
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		return sleep()
	},
	"grandchild": func(args []string) int {
		signal.Ignore(syscall.SIGTERM)
		if startChild(arg(args, 0), "ignoreterm", nil) != nil {
			return 3
		}
		return sleep()
	},
	"orphaner": func(args []string) int {
		if startChild(arg(args, 0), arg(args, 1), nil) != nil {
			return 3
		}
		return 0
	},
	"daemonize": func(args []string) int {
		c := exec.Command(Self(), arg(args, 0))
		c.Env = append(os.Environ(), Env+"=setsidchild")
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Run(); err != nil {
			return 3
		}
		fmt.Println("ready")
		if arg(args, 1) == "exit" {
			return 0
		}
		return sleep()
	},
	"setsidchild": func(args []string) int {
		if startChild(arg(args, 0), "ignoreterm", &syscall.SysProcAttr{Setsid: true}) != nil {
			return 3
		}
		return 0
	},
	"setsid": func(args []string) int {
		out, err := exec.Command("setsid", "sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!").Output()
		if err != nil {
			fmt.Println("setsid:", err)
			return 3
		}
		if pidfile := arg(args, 0); pidfile != "-" && pidfile != "" {
			if err := writePIDFile(pidfile, out); err != nil {
				return 3
			}
		} else {
			fmt.Print(string(out))
		}
		fmt.Println("ready")
		return sleep()
	},
	"flood": func([]string) int {
		line := []byte(strings.Repeat("x", 1023) + "\n")
		for {
			if _, err := os.Stdout.Write(line); err != nil {
				return 2
			}
		}
	},
	"closeout": func([]string) int {
		os.Stdout.Close()
		os.Stderr.Close()
		return sleep()
	},
	"env": func([]string) int {
		cfg, err := os.ReadFile(os.Getenv("PLUGS_CONFIG"))
		fmt.Printf("plug=%s instance=%s extra=%s err=%v config=%s\n",
			os.Getenv("PLUGS_PLUG"), os.Getenv("PLUGS_INSTANCE"), os.Getenv("EXTRA"), err, cfg)
		fmt.Fprintln(os.Stderr, "to stderr")
		return sleep()
	},
	"printenv": func([]string) int {
		for _, kv := range os.Environ() {
			fmt.Println(kv)
		}
		fmt.Println("ready")
		return sleep()
	},
	"trap": func(args []string) int {
		c := make(chan os.Signal, 16)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT)
		if err := os.WriteFile(arg(args, 0), nil, 0o600); err != nil {
			return 3
		}
		for s := range c {
			f, _ := os.OpenFile(arg(args, 0), os.O_APPEND|os.O_WRONLY, 0)
			fmt.Fprintln(f, s)
			f.Close()
		}
		return 0
	},
	"termlog": func(args []string) int {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		fmt.Println("ready")
		<-c
		f, _ := os.OpenFile(arg(args, 0), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
		fmt.Fprintln(f, arg(args, 1))
		f.Close()
		return 0
	},
	"hog": func([]string) int {
		var keep [][]byte
		for range 1 << 14 {
			b := make([]byte, 4<<20)
			for j := range b {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("not killed", len(keep))
		return 0
	},
	"hold": func(args []string) int {
		n, err := strconv.Atoi(arg(args, 0))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		ballast := make([]byte, n<<20)
		for i := range ballast {
			ballast[i] = byte(i) // touch every page so it is resident
		}
		fmt.Println("ready")
		sleep()
		runtime.KeepAlive(ballast)
		return 0
	},
	"forkbomb": func([]string) int {
		n, why := 0, "none"
		for range 10000 {
			if err := exec.Command("sleep", "300").Start(); err != nil {
				why = ErrName(errors.Unwrap(err))
				break
			}
			n++
		}
		fmt.Println("forked", n, why)
		return sleep()
	},
	"id": func(args []string) int {
		gs, _ := os.Getgroups()
		fmt.Println("id", os.Getuid(), os.Getgid(), gs)
		if arg(args, 0) == "sleep" {
			return sleep()
		}
		return 0
	},
	"probe": func(args []string) int {
		fmt.Println("write", ErrName(os.WriteFile(arg(args, 0), []byte("x"), 0o600)))
		fmt.Println("connect", ErrName(dial(arg(args, 1))))
		return sleep()
	},
	"write": func(args []string) int {
		for _, f := range args {
			fmt.Println(f, ErrName(os.WriteFile(f, []byte("x"), 0o644)))
		}
		return 0
	},
	"connect": func(args []string) int {
		for _, a := range args {
			fmt.Println(a, ErrName(dial(a)))
		}
		return 0
	},
	"listen": func(args []string) int {
		for _, a := range args {
			// Plain TCP: Landlock (ABI 7) does not see Multipath TCP,
			// which net.Listen uses by default.
			var lc net.ListenConfig
			lc.SetMultipathTCP(false)
			l, err := lc.Listen(context.Background(), "tcp", a)
			if err == nil {
				l.Close()
			}
			fmt.Println(a, ErrName(err))
		}
		return 0
	},
	"notify": func(args []string) int {
		if ok, err := daemon.SdNotify(false, arg(args, 0)); !ok || err != nil {
			return 3
		}
		return sleep()
	},
}

// sleep sleeps until the process is killed.
func sleep() int {
	time.Sleep(time.Hour)
	return 0
}

func arg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}

// startChild starts the test binary in mode with attr and writes its pid
// to pidfile.
func startChild(pidfile, mode string, attr *syscall.SysProcAttr) error {
	c := exec.Command(Self())
	c.Env = append(os.Environ(), Env+"="+mode)
	c.SysProcAttr = attr
	if err := c.Start(); err != nil {
		return err
	}
	return writePIDFile(pidfile, []byte(strconv.Itoa(c.Process.Pid)))
}

// writePIDFile writes a pid file whole: tests wait for it to exist, then
// read it, and a file created but not yet written read as pid 0 (a test
// then took the process for gone).
func writePIDFile(name string, b []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// ErrName is "ok" for nil, the errno's name (EACCES, EPERM, EAGAIN,
// ECONNREFUSED) for those, else the error's text: what probes print.
func ErrName(err error) string {
	if err == nil {
		return "ok"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EACCES:
			return "EACCES"
		case syscall.EPERM:
			return "EPERM"
		case syscall.EAGAIN:
			return "EAGAIN"
		case syscall.ECONNREFUSED:
			return "ECONNREFUSED"
		}
		return errno.Error()
	}
	return err.Error()
}

// CopySelf copies the test binary to dir/name (mode 0755) and returns its
// path: the go build cache is private to its user, and a plugin run as
// another user needs a copy it may read.
func CopySelf(t testing.TB, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(Self())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
