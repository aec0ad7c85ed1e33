package runner

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/syncbuf"
)

// The files of an instance's folder are the instance's user's to replace
// (the sandbox gives it the folder): a symlink or a FIFO put in the place
// of one must never be written through, read through, or waited on by the
// daemon (openfile.go). Each test below failed before openfile.go: a
// write through the link, or an open(2) that never returned.

// hangBound is how long an open may take before the test calls it hung.
const hangBound = 10 * time.Second

// hostileRunner is newTestRunner with the runner's log in logs, and an
// unwedger: while the runner closes, at the end of the test, the FIFOs
// named are opened (and drained) from the other end again and again, so
// that a runner blocked in one (the bug) can close and the test fails
// instead of hanging.
func hostileRunner(t *testing.T, logs *syncbuf.Buffer, fifos ...*string) (*Runner, *statuses) {
	t.Helper()
	st := newStatuses()
	r, err := New(Options{StateDir: t.TempDir(), Observer: st.observe, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 64<<10)
			for range 6000 { // 60 s at most
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				for _, name := range fifos {
					if fi, err := os.Lstat(*name); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
						continue
					}
					if fd, err := unix.Open(*name, unix.O_RDONLY|unix.O_NONBLOCK, 0); err == nil {
						for range 64 {
							if n, err := unix.Read(fd, buf); n <= 0 || err != nil {
								break
							}
						}
						unix.Close(fd)
					}
					if fd, err := unix.Open(*name, unix.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
						unix.Close(fd)
					}
				}
			}
		}()
		if err := r.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
		close(stop)
		<-done
	})
	return r, st
}

// within runs f and fails the test if it has not returned within hangBound.
func within(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(hangBound):
		t.Fatalf("%s: blocked for %v", what, hangBound)
		return nil
	}
}

// victimFile is a file outside the instance's folder, of the daemon's
// user, that a planted symlink names.
func victimFile(t *testing.T) (name, content string) {
	name = filepath.Join(t.TempDir(), "victim")
	content = "root's own file: no plugin writes here\n"
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return name, content
}

func mustUnchanged(t *testing.T, name, content string) {
	t.Helper()
	if b, err := os.ReadFile(name); err != nil || string(b) != content {
		t.Errorf("%s = %q (%d bytes), %v; want it unchanged: %q", name, b[:min(len(b), 200)], len(b), err, content)
	}
}

func mustRegular(t *testing.T, name string) {
	t.Helper()
	if fi, err := os.Lstat(name); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("%s: %v, %v; want a regular file", name, fi, err)
	}
}

// crashAndAwaitRestart kills the instance's process and waits for the
// restarted one: the state writes of the exit and of the restart (backoff,
// running) all went through.
func crashAndAwaitRestart(t *testing.T, sts *statuses, id instance.ID, pid int) int {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	return sts.await(t, id, "restarted", func(st instance.Status) bool { return running(st) && st.PID != pid }).PID
}

// awaitStateFile waits until instance.json, read by the rule of
// openfile.go, says running with pid.
func awaitStateFile(t *testing.T, dir string, pid int) {
	t.Helper()
	eventually(t, "instance.json says running with the new pid", func() bool {
		f, err := ReadInstanceFile(filepath.Join(dir, "instance.json"))
		return err == nil && f.State == "running" && f.PID == pid
	})
}

// TestPlantedTwinIsReplaced: a symlink to a file of root's or a FIFO put
// as .instance.json.next (the twin writeSwapped writes and swaps in), or
// as instance.json itself (swapped into the twin's place by the next
// write), is not written through nor opened: it is replaced, logged, and
// the state keeps being written (audit r3, r4).
func TestPlantedTwinIsReplaced(t *testing.T) {
	for _, c := range []struct {
		name, file, kind string
	}{
		{"symlink twin", ".instance.json.next", "symlink"},
		{"FIFO twin", ".instance.json.next", "FIFO"},
		{"symlink instance.json", "instance.json", "symlink"},
		{"FIFO instance.json", "instance.json", "FIFO"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs syncbuf.Buffer
			var planted string
			r, sts := hostileRunner(t, &logs, &planted)
			s := fakeSpec("evil", "default", "sleep")
			if err := r.Start(t.Context(), s); err != nil {
				t.Fatal(err)
			}
			pid := sts.await(t, s.ID, "running", running).PID
			dir := InstanceDir(r.opts.StateDir, s.ID)
			planted = filepath.Join(dir, c.file)
			victim, content := victimFile(t)
			if err := os.Remove(planted); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			var err error
			if c.kind == "symlink" {
				err = os.Symlink(victim, planted)
			} else {
				err = syscall.Mkfifo(planted, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			pid = crashAndAwaitRestart(t, sts, s.ID, pid)
			pid = crashAndAwaitRestart(t, sts, s.ID, pid) // again: the one swapped into the twin's place goes too
			awaitStateFile(t, dir, pid)
			mustUnchanged(t, victim, content)
			mustRegular(t, filepath.Join(dir, "instance.json"))
			want := "is a symlink"
			if c.kind == "FIFO" {
				want = "is a FIFO, not a regular file"
			}
			if !strings.Contains(logs.String(), want) {
				t.Errorf("the daemon's log does not say %q:\n%s", want, logs.String())
			}
			// Stopped in time: the instance's goroutine is not wedged.
			if err := within(t, "stop", func() error { return r.Stop(t.Context(), s.ID) }); err != nil {
				t.Fatal(err)
			}
			f, err := ReadInstanceFile(filepath.Join(dir, "instance.json"))
			if err != nil || f.State != "stopped" {
				t.Errorf("instance.json after the stop: %+v, %v", f, err)
			}
		})
	}
}

// TestWriteSwappedThroughNoLink is TestPlantedTwinIsReplaced without a
// process: the write that finds a symlink as the twin writes a new file,
// says so, and leaves the file the link names as it was.
func TestWriteSwappedThroughNoLink(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "instance.json")
	if err := writeSwapped(name, []byte("one\n"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	twin := filepath.Join(dir, ".instance.json.next")
	victim, content := victimFile(t)
	if err := os.Remove(twin); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, twin); err != nil {
		t.Fatal(err)
	}
	err := writeSwapped(name, []byte("two\n"), 0o600, nil)
	if !wasReplaced(err) || !strings.Contains(err.Error(), twin+" is a symlink") {
		t.Errorf("write over a symlinked twin: %v; want it replaced, and said", err)
	}
	mustUnchanged(t, victim, content)
	if b, err := os.ReadFile(name); err != nil || string(b) != "two\n" {
		t.Errorf("instance.json = %q, %v", b, err)
	}
	mustRegular(t, twin)
	if err := writeSwapped(name, []byte("three\n"), 0o600, nil); err != nil {
		t.Errorf("the next write: %v", err)
	}
}

// TestPlantedConfigFileIsReplaced: a FIFO or a symlink as config.json
// (left while the daemon was down: audit r7) does not block the start
// that compares it (sameFile) and is not read: it is replaced by the
// rendered config, and said in the log.
func TestPlantedConfigFileIsReplaced(t *testing.T) {
	for _, kind := range []string{"FIFO", "symlink"} {
		t.Run(kind, func(t *testing.T) {
			var logs syncbuf.Buffer
			var planted string
			r, sts := hostileRunner(t, &logs, &planted)
			s := fakeSpec("evil", "default", "sleep")
			if err := r.Start(t.Context(), s); err != nil {
				t.Fatal(err)
			}
			sts.await(t, s.ID, "running", running)
			if err := r.Stop(t.Context(), s.ID); err != nil {
				t.Fatal(err)
			}
			dir := InstanceDir(r.opts.StateDir, s.ID)
			planted = filepath.Join(dir, "config.json")
			os.Remove(planted)
			victim, content := victimFile(t)
			var err error
			if kind == "FIFO" {
				err = syscall.Mkfifo(planted, 0o600)
			} else {
				err = os.Symlink(victim, planted)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := within(t, "start", func() error { return r.Start(t.Context(), s) }); err != nil {
				t.Fatal(err)
			}
			pid := sts.await(t, s.ID, "running again", running).PID
			awaitStateFile(t, dir, pid)
			mustUnchanged(t, victim, content)
			mustRegular(t, planted)
			if b, err := os.ReadFile(planted); err != nil || !bytes.Equal(b, s.Config) {
				t.Errorf("config.json = %q, %v; want %q", b, err, s.Config)
			}
			want := planted + " is a FIFO, not a regular file"
			if kind == "symlink" {
				want = planted + " is a symlink"
			}
			if !strings.Contains(logs.String(), want) {
				t.Errorf("the daemon's log does not say %q:\n%s", want, logs.String())
			}
		})
	}
}

// TestPlantedInstanceFileAtStartup: a FIFO as instance.json, left while
// the daemon was down (audit r7), does not block the next daemon's
// CleanupStale: it is refused with its name and what it is, removed, and
// the instance's state is written again at its start.
func TestPlantedInstanceFileAtStartup(t *testing.T) {
	var logs syncbuf.Buffer
	var planted string
	r, sts := hostileRunner(t, &logs, &planted)
	s := fakeSpec("evil", "default", "sleep")
	dir := InstanceDir(r.opts.StateDir, s.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	planted = filepath.Join(dir, "instance.json")
	if err := syscall.Mkfifo(planted, 0o600); err != nil {
		t.Fatal(err)
	}
	// The other end of a FIFO, for the bug: a CleanupStale blocked in
	// its open is let go when the test fails.
	var cleanupLog syncbuf.Buffer
	err := within(t, "CleanupStale", func() error {
		return CleanupStale(r.opts.StateDir, slog.New(slog.NewTextHandler(&cleanupLog, nil)))
	})
	if err != nil {
		t.Logf("CleanupStale: %v", err)
	}
	if want := planted + " is a FIFO, not a regular file"; !strings.Contains(cleanupLog.String(), want) {
		t.Errorf("CleanupStale's log does not say %q:\n%s", want, cleanupLog.String())
	}
	if err := within(t, "start", func() error { return r.Start(t.Context(), s) }); err != nil {
		t.Fatal(err)
	}
	pid := sts.await(t, s.ID, "running", running).PID
	awaitStateFile(t, dir, pid)
	mustRegular(t, planted)
}

// TestReadInstanceFileRefusesPlanted: instance.json is read only when it
// is a regular file of the daemon's user (the next daemon kills what it
// names), at once whatever it is.
func TestReadInstanceFileRefusesPlanted(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := writeInstanceFile(good, &InstanceFile{Plug: "p", Instance: "i", State: "running", PID: 1}, nil); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.json")
	if err := os.Link(good, hard); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		link: "is a symlink",
		hard: "has 2 hard links",
		fifo: "is a FIFO, not a regular file",
		dir:  "is a directory",
	} {
		err := within(t, "read "+name, func() error { _, err := ReadInstanceFile(name); return err })
		if err == nil || !strings.Contains(err.Error(), name+" "+want) {
			t.Errorf("ReadInstanceFile(%s) = %v; want %q", name, err, want)
		}
	}
	if os.Geteuid() == 0 {
		other := filepath.Join(dir, "other.json")
		b, _ := os.ReadFile(good)
		if err := os.WriteFile(other, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(other, 12345, 12345); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadInstanceFile(other); err == nil || !strings.Contains(err.Error(), "owned by uid 12345") {
			t.Errorf("an instance.json of the instance's user read: %v", err)
		}
	}
}

// TestPlantedOutputLogReplaced: a symlink or a FIFO as output.log is not
// written through (root's output appended to the file the link names) nor
// written into (a FIFO blocks the output once its buffer is full, and the
// stop that waits for it): a new file replaces it, and the log says so.
func TestPlantedOutputLogReplaced(t *testing.T) {
	for _, kind := range []string{"FIFO", "symlink"} {
		t.Run(kind, func(t *testing.T) {
			var logs syncbuf.Buffer
			var planted string
			r, sts := hostileRunner(t, &logs, &planted)
			s := fakeSpec("evil", "default", "flood")
			dir := InstanceDir(r.opts.StateDir, s.ID)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			planted = filepath.Join(dir, "output.log")
			victim, content := victimFile(t)
			var err error
			if kind == "FIFO" {
				err = syscall.Mkfifo(planted, 0o600)
			} else {
				err = os.Symlink(victim, planted)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Start(t.Context(), s); err != nil {
				t.Fatal(err)
			}
			pid := sts.await(t, s.ID, "running", running).PID
			eventually(t, "output.log a regular file with more than a pipe's buffer", func() bool {
				fi, err := os.Lstat(planted)
				return err == nil && fi.Mode().IsRegular() && fi.Size() > 1<<20
			})
			mustUnchanged(t, victim, content)
			awaitStateFile(t, dir, pid)
			want := planted + " is a FIFO, not a regular file"
			if kind == "symlink" {
				want = planted + " is a symlink"
			}
			if !strings.Contains(logs.String(), want) {
				t.Errorf("the daemon's log does not say %q:\n%s", want, logs.String())
			}
			if err := within(t, "stop", func() error { return r.Stop(t.Context(), s.ID) }); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTailLogRefusesPlanted: plugs logs (and the dashboard), run by the
// daemon's user, read no file through a symlink planted as a backup of
// output.log (output.log.1 -> /etc/shadow) and do not wait on a FIFO.
func TestTailLogRefusesPlanted(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("root:$6$secret-hash:19000::::::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		plant    func(dir string) error
		wantErr  string // from TailLog
		wantRead string
	}{
		{"symlinked backup", func(dir string) error {
			return os.Symlink(secret, filepath.Join(dir, "output.log.1"))
		}, "", "current line\n"},
		{"FIFO backup", func(dir string) error {
			return syscall.Mkfifo(filepath.Join(dir, "output.log.1"), 0o600)
		}, "", "current line\n"},
		{"regular backup after a symlinked one", func(dir string) error {
			if err := os.Symlink(secret, filepath.Join(dir, "output.log.1")); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "output.log.2"), []byte("old line\n"), 0o600)
		}, "", "current line\n"},
		{"symlinked log", func(dir string) error {
			os.Remove(filepath.Join(dir, "output.log"))
			return os.Symlink(secret, filepath.Join(dir, "output.log"))
		}, "output.log is a symlink", ""},
		{"FIFO log", func(dir string) error {
			os.Remove(filepath.Join(dir, "output.log"))
			return syscall.Mkfifo(filepath.Join(dir, "output.log"), 0o600)
		}, "output.log is a FIFO, not a regular file", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			name := filepath.Join(dir, "output.log")
			if err := os.WriteFile(name, []byte("current line\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := c.plant(dir); err != nil {
				t.Fatal(err)
			}
			// A reader blocked in a FIFO's open (the bug) is let go.
			t.Cleanup(func() {
				for _, n := range []string{name, name + ".1"} {
					if fd, err := unix.Open(n, unix.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
						unix.Close(fd)
					}
				}
			})
			for _, follow := range []bool{false, true} {
				var out bytes.Buffer
				ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
				err := within(t, "TailLog", func() error { return TailLog(ctx, &out, name, 100, follow) })
				cancel()
				if c.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), c.wantErr) {
						t.Errorf("follow %v: error %v; want %q", follow, err, c.wantErr)
					}
				} else if err != nil {
					t.Errorf("follow %v: %v", follow, err)
				}
				if out.String() != c.wantRead {
					t.Errorf("follow %v: read %q; want %q", follow, out.String(), c.wantRead)
				}
			}
		})
	}
}

// TestSymlinkedPlugFolderNotFollowed: <state>/instances/<plug> replaced by
// a symlink (audit r8, root only) is refused at the start, with the
// reason, and the removal of the instance deletes nothing through it.
func TestSymlinkedPlugFolderNotFollowed(t *testing.T) {
	var logs syncbuf.Buffer
	r, sts := hostileRunner(t, &logs)
	s := fakeSpec("elsewhere", "default", "sleep")
	target := t.TempDir()
	if err := os.MkdirAll(filepath.Join(target, "default"), 0o700); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(target, "default", "data")
	if err := os.WriteFile(data, []byte("the operator's\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plugDir := filepath.Dir(InstanceDir(r.opts.StateDir, s.ID))
	if err := os.MkdirAll(filepath.Dir(plugDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, plugDir); err != nil {
		t.Fatal(err)
	}
	err := r.Start(t.Context(), s)
	if want := plugDir + " is a symlink"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("start through a symlinked plug folder: %v; want %q", err, want)
	}
	st := sts.await(t, s.ID, "failed", func(st instance.Status) bool { return st.State == instance.StateFailed })
	if !strings.Contains(st.Reason, "is a symlink") {
		t.Errorf("reason %q does not say why", st.Reason)
	}
	ents, _ := os.ReadDir(filepath.Join(target, "default"))
	if len(ents) != 1 {
		t.Errorf("files written through the link: %v", ents)
	}
	if err := r.Remove(t.Context(), s.ID); err != nil {
		t.Errorf("remove: %v", err)
	}
	if _, err := os.Stat(data); err != nil {
		t.Errorf("the removal deleted through the link: %v", err)
	}
}

// TestOpenRegularRule: the rule of openfile.go on each kind of file.
func TestOpenRegularRule(t *testing.T) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "regular")
	if err := os.WriteFile(reg, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(reg, link); err != nil {
		t.Fatal(err)
	}
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink(filepath.Join(dir, "nowhere"), dangling); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		flag int
		want string // "" for an open that succeeds
	}{
		{reg, os.O_RDONLY, ""},
		{reg, os.O_RDWR | os.O_APPEND, ""},
		{link, os.O_RDONLY, "is a symlink"},
		{dangling, os.O_WRONLY | os.O_CREATE, "is a symlink"},
		{fifo, os.O_RDONLY, "is a FIFO, not a regular file"},
		{fifo, os.O_WRONLY, "is a FIFO, not a regular file"},
		{fifo, os.O_RDWR, "is a FIFO, not a regular file"},
		{dir, os.O_RDONLY, "is a directory"},
		{dir, os.O_WRONLY, "is a directory"},
		{"/dev/null", os.O_WRONLY, "is a device"},
	} {
		f, err := within2(t, func() (*os.File, error) { return openRegular(c.name, c.flag, 0o600, false) })
		switch {
		case c.want == "" && err != nil:
			t.Errorf("open %s %#x: %v", c.name, c.flag, err)
		case c.want != "" && (err == nil || !isPlanted(err) || !strings.Contains(err.Error(), c.name+" "+c.want)):
			t.Errorf("open %s %#x: %v; want %q", c.name, c.flag, err, c.want)
		}
		if f != nil {
			if fl, _ := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); fl&unix.O_NONBLOCK != 0 {
				t.Errorf("open %s: left O_NONBLOCK", c.name)
			}
			f.Close()
		}
	}
	// A writer replaces what a reader refuses.
	for _, name := range []string{link, dangling, fifo} {
		f, planted, err := createRegular(name, os.O_WRONLY, 0o600)
		if err != nil || !wasReplaced(planted) {
			t.Errorf("create over %s: %v, %v", name, planted, err)
			continue
		}
		f.Close()
		mustRegular(t, name)
	}
	if b, _ := os.ReadFile(reg); string(b) != "x" {
		t.Errorf("the file a link named changed: %q", b)
	}
}

func within2(t *testing.T, f func() (*os.File, error)) (*os.File, error) {
	t.Helper()
	var fh *os.File
	err := within(t, "open", func() error {
		var err error
		fh, err = f()
		return err
	})
	return fh, err
}
