package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/internal/syncbuf"
)

func TestRunOnceExitOutputInputEnv(t *testing.T) {
	r, _ := newTestRunner(t, Options{})
	s := fakeSpec("task", "default", "sleep")
	var live syncbuf.Buffer
	res, err := r.RunOnce(t.Context(), Once{
		Spec:    s,
		Command: []string{"sh", "-c", `cat; echo "run=$PLUGS_RUN_ID config=$PLUGS_CONFIG input=$PLUGS_INPUT"; echo oops >&2; exit 3`},
		Env:     map[string]string{"PLUGS_INPUT": "in.json", "PLUGS_RUN_ID": "r-1"},
		Stdin:   strings.NewReader("hello\n"),
		Stdout:  &live,
	})
	if err != nil {
		t.Fatal(err)
	}
	wantOut := "hello\nrun=r-1 config=" + filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "config.json") + " input=in.json\n"
	if string(res.Stdout) != wantOut || string(res.Stderr) != "oops\n" || res.ExitCode != 3 || res.Signal != "" || res.TimedOut || res.PID == 0 {
		t.Errorf("result = %+v (stdout %q stderr %q)", res, res.Stdout, res.Stderr)
	}
	if res.Err() == nil || res.Err().Error() != "exited with code 3" {
		t.Errorf("Err() = %v", res.Err())
	}
	if live.String() != wantOut {
		t.Errorf("live stdout = %q, want %q", live.String(), wantOut)
	}
	if res.Duration <= 0 {
		t.Errorf("duration %v", res.Duration)
	}

	ok, err := r.RunOnce(t.Context(), Once{Spec: s, Command: []string{"true"}})
	if err != nil || ok.Err() != nil || ok.ExitCode != 0 {
		t.Errorf("true: %+v %v", ok, err)
	}
	if _, err := r.RunOnce(t.Context(), Once{Spec: s, Command: []string{"./no-such-program"}}); err == nil {
		t.Error("a missing program started")
	}
}

func TestRunOnceTailIsCapped(t *testing.T) {
	r, _ := newTestRunner(t, Options{})
	res, err := r.RunOnce(t.Context(), Once{
		Spec:      fakeSpec("task", "default", "sleep"),
		Command:   []string{"sh", "-c", `i=0; while [ $i -lt 100 ]; do echo line$i; i=$((i+1)); done`},
		TailBytes: 14,
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "line98\nline99\n" || !res.StdoutTruncated || res.StderrTruncated {
		t.Errorf("tail %q truncated %v", res.Stdout, res.StdoutTruncated)
	}
}

// TestRunOnceTimeoutKillsEverything: a run past its timeout gets the stop
// signal, then SIGKILL, and returns with none of its processes left:
// the grandchild in its group and a setsid double-forked one, both
// ignoring SIGTERM.
func TestRunOnceTimeoutKillsEverything(t *testing.T) {
	r, _ := newTestRunner(t, Options{})
	pids := t.TempDir()
	for _, mode := range []string{"grandchild", "daemonize"} {
		pidFile := filepath.Join(pids, mode)
		s := fakeSpec("task", mode, mode, pidFile)
		done := make(chan struct{})
		var res Result
		var err error
		go func() {
			defer close(done)
			res, err = r.RunOnce(t.Context(), Once{Spec: s, Timeout: 300 * time.Millisecond, KillAfter: 100 * time.Millisecond})
		}()
		gc := readPID(t, pidFile)
		<-done
		if err != nil {
			t.Fatal(err)
		}
		if !res.TimedOut || res.Err() == nil || !strings.HasPrefix(res.Err().Error(), "timed out after") {
			t.Errorf("%s: result %+v, Err %v", mode, res, res.Err())
		}
		if gc.alive() {
			t.Errorf("%s: grandchild %d outlived the run", mode, gc.pid)
		}
	}
}

// TestRunOnceLeavesNothingBehind: a program that exits 0 after
// daemonising a child: the child is killed before RunOnce returns.
func TestRunOnceLeavesNothingBehind(t *testing.T) {
	r, _ := newTestRunner(t, Options{})
	pidFile := filepath.Join(t.TempDir(), "pid")
	res, err := r.RunOnce(t.Context(), Once{Spec: fakeSpec("task", "default", "daemonize", pidFile, "exit"), Env: map[string]string{"PLUGS_RUN_ID": "r-2"}})
	if err != nil || res.Err() != nil {
		t.Fatalf("%+v %v", res, err)
	}
	if b, err := os.ReadFile(pidFile); err != nil || len(b) == 0 {
		t.Fatalf("the program daemonised no child: %v", err)
	}
	if left := withEnv("PLUGS_RUN_ID=r-2"); len(left) > 0 {
		t.Errorf("processes %v of the run outlived it", left)
	}
}

func TestRunOnceCanceled(t *testing.T) {
	r, _ := newTestRunner(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	res, err := r.RunOnce(ctx, Once{Spec: fakeSpec("task", "default", "sleep")})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Canceled || res.Signal != "SIGTERM" {
		t.Errorf("result %+v", res)
	}
}
