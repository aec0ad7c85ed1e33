package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv selects what the test binary does when a test starts it as a
// plugin (through the shim).
const childEnv = "SANDBOX_TEST_CHILD"

func TestMain(m *testing.M) {
	MaybeExec()
	if mode, ok := os.LookupEnv(childEnv); ok {
		os.Exit(child(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// child is the fake plugin: it prints one line per action and exits 0,
// unless the action cannot even be attempted.
func child(mode string, args []string) int {
	switch mode {
	case "write": // write FILE...: "ok" or the errno name per file
		for _, f := range args {
			err := os.WriteFile(f, []byte("x"), 0o644)
			fmt.Println(f, errName(err))
		}
	case "connect": // connect ADDR...
		for _, a := range args {
			c, err := net.DialTimeout("tcp", a, 2*time.Second)
			if err == nil {
				c.Close()
			}
			fmt.Println(a, errName(err))
		}
	case "listen": // listen ADDR
		for _, a := range args {
			// Plain TCP: Landlock (ABI 7) does not see Multipath TCP,
			// which net.Listen uses by default.
			var lc net.ListenConfig
			lc.SetMultipathTCP(false)
			l, err := lc.Listen(context.Background(), "tcp", a)
			if err == nil {
				l.Close()
			}
			fmt.Println(a, errName(err))
		}
	case "id":
		gs, _ := os.Getgroups()
		fmt.Println(os.Getuid(), os.Getgid(), gs)
	case "sleep":
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "hog": // allocate and touch 4 MiB at a time until killed
		var keep [][]byte
		for i := 0; i < 1<<14; i++ {
			b := make([]byte, 4<<20)
			for j := range b {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("not killed", len(keep))
	case "grandchild": // a setsid'd double-forked grandchild, its pid printed
		cmd := exec.Command("setsid", "sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!")
		out, err := cmd.Output()
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Print(string(out))
		time.Sleep(time.Hour)
	case "forkbomb": // fork until refused, report, then keep trying
		var n int
		for i := 0; i < 10000; i++ {
			cmd := exec.Command("sleep", "300")
			if err := cmd.Start(); err != nil {
				fmt.Println("refused after", n, errName(errors.Unwrap(err)))
				break
			}
			n++
		}
		time.Sleep(time.Hour)
	default:
		fmt.Fprintln(os.Stderr, "unknown child mode", mode)
		return 2
	}
	return 0
}

func errName(err error) string {
	if err == nil {
		return "ok"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errnoName(errno)
	}
	return err.Error()
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EACCES:
		return "EACCES"
	case syscall.EPERM:
		return "EPERM"
	case syscall.EAGAIN:
		return "EAGAIN"
	case syscall.ECONNREFUSED:
		return "ECONNREFUSED"
	}
	return e.Error()
}

// plugin is a copy of the test binary in a folder every user may read: the
// go build cache is private to root.
func plugin(t *testing.T) (dir, path string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err = os.MkdirTemp("", "sandbox-plugin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "plugin")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }
