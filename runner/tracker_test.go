package runner

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plugs-dev/plugs/internal/testplugin"
)

// TestTrackerKillWaitHoldsOnlyItsCaller: a SIGKILL call returns once the
// processes it killed have exited, and a process slow to exit (1 GiB to
// free) holds up that call alone: a call made meanwhile, for another
// target, is walked for and returns before it (in a stop of 1,000, one such
// process held every later stop for ~80 ms).
func TestTrackerKillWaitHoldsOnlyItsCaller(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env := "PLUGS_CONFIG=/nonexistent/" + t.Name()
	c := exec.Command(exe, strconv.Itoa(1<<30))
	c.Env = append(os.Environ(), testplugin.Env+"=slowexit", "GORACE=atexit_sleep_ms=0", env)
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = c.Process.Kill()
		_ = c.Wait() // the tracker's reapAdopted may have reaped it
	}()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("hog: %q, %v", line, err)
	}
	pidfd, err := unix.PidfdOpen(c.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	exited := func() bool {
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		n, _ := unix.Poll(fds, 0)
		return n == 1
	}

	var pt ProcTracker
	killed := make(chan int, 1)
	go func() {
		n, _ := pt.Signal(Target{Env: env}, syscall.SIGKILL)
		killed <- n
	}()
	// Once the hog has the signal (it is exiting: PF_EXITING in the flags
	// of /proc/<pid>/stat), another call.
	for deadline := time.Now().Add(10 * time.Second); !exiting(c.Process.Pid); {
		if time.Now().After(deadline) {
			t.Fatal("the hog was not killed")
		}
		time.Sleep(100 * time.Microsecond)
	}
	if n, err := pt.Signal(Target{Env: "PLUGS_CONFIG=/nonexistent/other"}, syscall.SIGKILL); n != 0 || err != nil {
		t.Errorf("the other call: %d signalled, %v", n, err)
	}
	if exited() {
		// Freeing 1 GiB of small pages takes ~100 ms here, a walk for
		// nothing well under 1 ms.
		t.Fatal("the other call returned only after the hog's exit: it waited for another call's kill")
	}
	select {
	case n := <-killed:
		t.Fatalf("the hog's call returned (%d signalled) before its process exited", n)
	default:
	}
	if n := <-killed; n != 1 {
		t.Errorf("the hog's call signalled %d, want 1", n)
	}
	if !exited() {
		t.Error("the hog's call returned before its process exited")
	}
}

// exiting reports whether process pid is in its exit (PF_EXITING, field 9
// of /proc/<pid>/stat), or gone.
func exiting(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3, the state
	if len(f) < 7 {
		return false
	}
	flags, _ := strconv.ParseUint(f[6], 10, 64)
	return flags&0x4 != 0
}
