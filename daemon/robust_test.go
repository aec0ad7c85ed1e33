package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
)

// jsonLog is a concurrency-safe buffer of JSON log records.
type jsonLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *jsonLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// records parses every record logged so far.
func (l *jsonLog) records(t testing.TB) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(l.buf.Bytes()))
	for {
		var r map[string]any
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("log is not JSON lines: %v", err)
		}
		out = append(out, r)
	}
}

// count is how many records have message msg.
func count(recs []map[string]any, msg string) int {
	n := 0
	for _, r := range recs {
		if r["msg"] == msg {
			n++
		}
	}
	return n
}

// hasNewline reports whether any string in v holds a line break.
func hasNewline(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.ContainsAny(v, "\n\r")
	case map[string]any:
		for _, x := range v {
			if hasNewline(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if hasNewline(x) {
				return true
			}
		}
	}
	return false
}

// sleeperDir writes the sleeper plugin and plugs.hcl into a fresh folder.
func sleeperDir(t *testing.T, deployment string) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	for name, content := range sleeperPlugin {
		writeFile(t, filepath.Join(dir, name), content)
	}
	file = filepath.Join(dir, "plugs.hcl")
	writeFile(t, file, deployment)
	return dir, file
}

// TestReconcileOutcomeLoggedOnce: each reconcile is one log record (the
// daemon's, not also the loop's), errors under the one key "err" (never
// "error"), on one line (diagnostics stay data: no value holds a line
// break), and the same failure again is not logged again.
func TestReconcileOutcomeLoggedOnce(t *testing.T) {
	_, file := sleeperDir(t, sleeperDeployment(map[string]string{"a": "1s"}))
	logs := &jsonLog{}
	c := startDaemon(t, Options{File: file, StateDir: filepath.Join(filepath.Dir(file), ".plugs"), NoWatch: true,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	ctx := context.Background()
	bad := "plug \"a\" {\n  source = \"./plugins/sleeper\"\n  bogus  = 1\n}\n\nplug \"b\" {\n  sorce = 1\n}\n"
	writeFile(t, file, bad)
	for range 2 { // the same failure twice: logged once
		if _, err := c.Apply(ctx); err == nil {
			t.Fatal("apply of an invalid plugs.hcl succeeded")
		}
	}
	writeFile(t, file, sleeperDeployment(map[string]string{"a": "2s"}))
	if _, err := c.Apply(ctx); err != nil {
		t.Fatal(err)
	}
	recs := logs.records(t)
	if got := count(recs, "reconciled"); got != 2 {
		t.Errorf("%d \"reconciled\" records, want 2 (start, the fix)", got)
	}
	if got := count(recs, "reconcile failed"); got != 1 {
		t.Errorf("%d \"reconcile failed\" records for one failure seen twice, want 1", got)
	}
	for _, r := range recs {
		if _, ok := r["error"]; ok {
			t.Errorf("a record uses the key \"error\" (errors go under \"err\"): %v", r)
		}
		if hasNewline(r) {
			t.Errorf("a record holds a line break: %v", r)
		}
		if r["msg"] == "reconcile failed" {
			e, _ := r["err"].(string)
			if !strings.Contains(e, "plugs.hcl:3,3-8: Unsupported argument") || !strings.Contains(e, "plugs.hcl:7,3-8") || r["kind"] != "input" {
				t.Errorf("failure record %v: want both diagnostics on one line and the kind", r)
			}
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", logs.buf.String())
	}
}

// pids maps plug/instance to the pid of every running instance.
func pids(st *api.Status) map[string]int {
	out := map[string]int{}
	for _, i := range st.Instances {
		if i.State == "running" {
			out[i.Plug+"/"+i.Instance] = i.PID
		}
	}
	return out
}

// dozen is a deployment of 4 plugs with 3 instances each.
func dozen() string {
	var b strings.Builder
	for p := range 4 {
		fmt.Fprintf(&b, "plug \"p%d\" {\n  source = \"./plugins/sleeper\"\n", p)
		for i := range 3 {
			fmt.Fprintf(&b, "  instance \"i%d\" {}\n", i)
		}
		b.WriteString("}\n\n")
	}
	return b.String()
}

// settled waits until a reconcile that started after since has ended and
// none runs.
func settled(t *testing.T, c *api.Client, since time.Time) *api.Status {
	t.Helper()
	return waitStatus(t, c, "a reconcile after the save", func(s *api.Status) bool {
		r := s.Daemon.LastReconcile
		return s.Daemon.Reconciling == nil && r != nil && r.At.Add(-r.Duration).After(since)
	})
}

// TestHalfWrittenSaveStopsNothing writes plugs.hcl the ways a careless save
// does — `cat > plugs.hcl` from a slow pipe, truncate-then-write in place —
// while a dozen instances run: none may stop. A deployment that declares
// no instance, saved on purpose, is refused until plugs apply.
func TestHalfWrittenSaveStopsNothing(t *testing.T) {
	full := dozen()
	_, file := sleeperDir(t, full)
	c := startDaemon(t, Options{File: file, StateDir: filepath.Join(filepath.Dir(file), ".plugs"), StableWait: 400 * time.Millisecond})
	st := waitStatus(t, c, "12 instances running", func(s *api.Status) bool { return len(pids(s)) == 12 })
	before := pids(st)
	unchanged := func(what string) {
		t.Helper()
		st, err := c.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := pids(st); fmt.Sprint(got) != fmt.Sprint(before) {
			t.Errorf("%s: pids %v, want %v (nothing stopped or replaced)", what, got, before)
		}
	}

	// cat > plugs.hcl, fed by a pipe that pauses (a slow scp, a paste): the
	// file is empty, then holds one plug, then all four.
	start := time.Now()
	cat := exec.Command("sh", "-c", "cat > "+file)
	in, err := cat.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the empty file is seen (debounce 100 ms)
	half := full[:strings.Index(full, "plug \"p1\"")]
	if _, err := io.WriteString(in, half); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // and the file with one plug of four
	if _, err := io.WriteString(in, full[len(half):]); err != nil {
		t.Fatal(err)
	}
	in.Close()
	if err := cat.Wait(); err != nil {
		t.Fatal(err)
	}
	settled(t, c, start)
	unchanged("after cat > plugs.hcl")

	// An editor that truncates and writes in place.
	start = time.Now()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := f.WriteString(full); err != nil {
		t.Fatal(err)
	}
	f.Close()
	settled(t, c, start)
	unchanged("after a truncate-then-write save")

	// A save in two writes whose first holds three whole plugs of four: it
	// parses, and would stop a quarter of what runs.
	start = time.Now()
	f, err = os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	cut := strings.Index(full, "plug \"p3\"")
	if _, err := f.WriteString(full[:cut]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // seen (debounce 100 ms), not yet stable (400 ms)
	if _, err := f.WriteString(full[cut:]); err != nil {
		t.Fatal(err)
	}
	f.Close()
	settled(t, c, start)
	unchanged("after a save in two writes")

	// A comment-only plugs.hcl, saved whole (rename over): refused.
	start = time.Now()
	tmp := file + ".new"
	writeFile(t, tmp, "# nothing here yet\n")
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	st = settled(t, c, start)
	if r := st.Daemon.LastReconcile; r.Error == "" || !strings.Contains(r.Error, "declares no instance while 12 run") || r.Kind != api.KindInput {
		t.Errorf("a comment-only plugs.hcl: last reconcile %+v, want it refused", r)
	}
	unchanged("after a comment-only save")
	// plugs apply says so: everything stops.
	rep, err := c.Apply(context.Background())
	if err != nil {
		t.Fatalf("plugs apply of the empty deployment: %v", err)
	}
	if rep.Stopped != 12 {
		t.Errorf("plugs apply stopped %d, want 12", rep.Stopped)
	}
}

// TestBlockedLoadDoesNotWedge: a plugs.hcl whose file() names a FIFO
// blocks the load on open. The reconcile shows in status while it runs,
// ends at its deadline, a fixed plugs.hcl still applies, plugs apply
// answers, and stopping the daemon works while another such load blocks.
func TestBlockedLoadDoesNotWedge(t *testing.T) {
	dir, file := sleeperDir(t, sleeperDeployment(map[string]string{"a": "1s"}))
	fifo := filepath.Join(dir, "token")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Whatever blocks on the FIFO is let go at the end (goleak).
	t.Cleanup(func() {
		for range 10 {
			f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				return // no reader left
			}
			f.Close()
			time.Sleep(20 * time.Millisecond)
		}
	})
	stateDir := filepath.Join(dir, ".plugs")
	opts := Options{File: file, StateDir: stateDir, ReconcileTimeout: 500 * time.Millisecond,
		MetricsAddr: "127.0.0.1:0", BrokerAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)}
	ready := make(chan struct{})
	opts.Ready = func() { close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, opts) }()
	<-ready
	c, err := api.Dial(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitStatus(t, c, "a running", func(s *api.Status) bool { return len(pids(s)) == 1 })

	blocking := "plug \"a\" {\n  source = \"./plugins/sleeper\"\n  params = { interval = file(\"token\") }\n}\n"
	writeFile(t, file, blocking)
	var sawProgress bool
	st := waitStatus(t, c, "the blocked reconcile to show or end", func(s *api.Status) bool {
		if p := s.Daemon.Reconciling; p != nil && p.Step == "load" {
			sawProgress = true
		}
		r := s.Daemon.LastReconcile
		return r != nil && r.Error != ""
	})
	refused := strings.Contains(st.Daemon.LastReconcile.Error, "regular file")
	if !refused {
		if !sawProgress {
			t.Error("status never showed the reconcile in progress (step load)")
		}
		if !strings.Contains(st.Daemon.LastReconcile.Error, "block") {
			t.Errorf("last reconcile %q, want the deadline and the hint", st.Daemon.LastReconcile.Error)
		}
	} else {
		t.Log("file() refused the FIFO without blocking; the deadline was not needed")
	}

	// A fixed plugs.hcl applies though the earlier load may still block.
	writeFile(t, file, sleeperDeployment(map[string]string{"a": "1s", "b": "1s"}))
	waitStatus(t, c, "b running after the fix", func(s *api.Status) bool { return len(pids(s)) == 2 })
	actx, acancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer acancel()
	if _, err := c.Apply(actx); err != nil {
		t.Errorf("plugs apply after the fix: %v", err)
	}

	// Stop while a reconcile blocks again.
	writeFile(t, file, blocking)
	if !refused {
		waitStatus(t, c, "a reconcile in progress", func(s *api.Status) bool { return s.Daemon.Reconciling != nil })
	}
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the daemon did not stop while a load blocked")
	}
}

// TestFIFOAsPlugsHCLRefused: plugs.hcl replaced by a symlink to a FIFO
// (what a hostile or careless `ln -sf` makes) is refused as not a regular
// file, at once: no read of it blocks, neither the load nor the check of
// whether its bytes run already (contentHash) nor the file watch's
// reconcile; plugs apply answers with the error, what ran keeps running,
// and a good file applies again.
func TestFIFOAsPlugsHCLRefused(t *testing.T) {
	dir, file := sleeperDir(t, sleeperDeployment(map[string]string{"a": "1s"}))
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // a reader blocked on the FIFO (the bug) is let go
		for range 10 {
			f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				return
			}
			f.Close()
			time.Sleep(20 * time.Millisecond)
		}
	})
	stateDir := filepath.Join(dir, ".plugs")
	c := startDaemon(t, Options{File: file, StateDir: stateDir})
	before := pids(waitStatus(t, c, "a running", func(s *api.Status) bool { return len(pids(s)) == 1 }))

	link := file + ".link"
	if err := os.Symlink("pipe", link); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link, file); err != nil { // the file watch fires too
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Apply(ctx)
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("plugs apply with plugs.hcl a FIFO: %v, want it refused as not a regular file", err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := pids(st); !maps.Equal(got, before) {
		t.Errorf("instances %v after the refused FIFO, want %v unchanged", got, before)
	}

	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	writeFile(t, file, sleeperDeployment(map[string]string{"a": "1s", "b": "1s"}))
	rep, err := c.Apply(ctx)
	if err != nil || rep.Started != 1 {
		t.Fatalf("plugs apply of a good file after the FIFO: %+v, %v; want b started", rep, err)
	}
}

// TestApplyEndsTheWaitForAStableFile: a file event whose plan stops an
// instance waits for plugs.hcl to stay unchanged (here for a minute); a
// plugs apply meanwhile applies the file as it is, at once.
func TestApplyEndsTheWaitForAStableFile(t *testing.T) {
	full := dozen()
	_, file := sleeperDir(t, full)
	c := startDaemon(t, Options{File: file, StateDir: filepath.Join(filepath.Dir(file), ".plugs"), StableWait: time.Minute})
	waitStatus(t, c, "12 instances running", func(s *api.Status) bool { return len(pids(s)) == 12 })
	writeFile(t, file+".new", full[:strings.Index(full, "plug \"p3\"")])
	if err := os.Rename(file+".new", file); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, "the file event's reconcile waiting", func(s *api.Status) bool {
		return s.Daemon.Reconciling != nil && strings.Contains(s.Daemon.Reconciling.Step, "stable")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Apply(ctx); err != nil {
		t.Fatalf("plugs apply while a file event waits for a stable file: %v", err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pids(st)); n != 9 {
		t.Errorf("%d instances run after plugs apply of three plugs of four, want 9", n)
	}
}

// TestWhatValidateRefusesChangesNothing: a new version of a plugin whose
// program is a folder, or which needs a python3 this host lacks, is
// refused by the daemon's load as plugs validate refuses it (an input
// error at the plug), before its running instance is stopped.
func TestWhatValidateRefusesChangesNothing(t *testing.T) {
	dir, file := sleeperDir(t, sleeperDeployment(map[string]string{"a": "1s"}))
	c := startDaemon(t, Options{File: file, StateDir: filepath.Join(dir, ".plugs"), NoWatch: true})
	before := pids(waitStatus(t, c, "a running", func(s *api.Status) bool { return len(pids(s)) == 1 }))
	manifest := filepath.Join(dir, "plugins/sleeper/plugin.hcl")
	good, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "plugins/sleeper/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, manifest, want string }{
		{"a folder as the program", strings.Replace(string(good), `command = ["sh", "-c", "while true; do sleep 1; done"]`, `command = ["./sub"]`, 1), "Plugin program is not a file"},
	} {
		if !strings.Contains(tc.manifest, "./sub") {
			t.Fatalf("%s: the manifest was not changed:\n%s", tc.name, tc.manifest)
		}
		writeFile(t, manifest, tc.manifest)
		// Another plug added in the same change: the rest converges.
		writeFile(t, file, sleeperDeployment(map[string]string{"a": "1s"})+"plug \"other\" {\n  source = \"./other\"\n  plugin {\n    command = [\"sleep\", \"600\"]\n  }\n}\n")
		if err := os.MkdirAll(filepath.Join(dir, "other"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := c.Apply(context.Background())
		var e *api.Error
		if !errors.As(err, &e) || e.Kind != api.KindInput || !strings.Contains(e.Error(), tc.want) {
			t.Errorf("%s: apply answered %v, want an input error saying %q", tc.name, err, tc.want)
		}
		st, err := c.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := pids(st)
		if got["a/default"] != before["a/default"] || got["other/default"] == 0 {
			t.Errorf("%s: instances %v, want a on pid %d (its broken version stops nothing) and other running", tc.name, got, before["a/default"])
		}
	}
}

// TestSourceFailureHasItsPlace: a plug whose source is gone fails the
// daemon's load with the diagnostic plugs validate and plugs fetch give,
// at its plug block, not a line without a place.
func TestSourceFailureHasItsPlace(t *testing.T) {
	dir, file := sleeperDir(t, sleeperDeployment(map[string]string{"a": "1s"}))
	c := startDaemon(t, Options{File: file, StateDir: filepath.Join(dir, ".plugs"), NoWatch: true})
	before := pids(waitStatus(t, c, "a running", func(s *api.Status) bool { return len(pids(s)) == 1 }))
	writeFile(t, file, "plug \"a\" {\n  source = \"./nowhere\"\n}\n\nplug \"b\" {\n  source = \"./gone\"\n}\n")
	_, err := c.Apply(context.Background())
	var e *api.Error
	if !errors.As(err, &e) || e.Kind != api.KindInput {
		t.Fatalf("apply with sources gone: %v, want an input error", err)
	}
	lines := map[string]int{}
	for _, d := range e.Diagnostics {
		if d.Range != nil {
			lines[d.Summary] = d.Range.Start.Line
		}
	}
	if lines["Plug a failed"] != 1 || lines["Plug b failed"] != 5 {
		t.Errorf("diagnostics %+v, want each plug's failure at its plug block (lines 1 and 5)", e.Diagnostics)
	}
	if st, err := c.Status(context.Background()); err != nil || !maps.Equal(pids(st), before) {
		t.Errorf("instances after the failed load: %v %v, want %v", st, err, before)
	}
}

// TestFailedReplaceNotRetriedByEveryReconcile: a replace whose new spec
// cannot start (its pre_start fails) is rolled back; the reconciles of
// later file events do not try it again — each try would stop and start
// the instance that runs — and say it is held, until plugs apply asks.
func TestFailedReplaceNotRetriedByEveryReconcile(t *testing.T) {
	good := "plug \"a\" {\n  source = \"./plugins/sleeper\"\n}\n"
	bad := "plug \"a\" {\n  source = \"./plugins/sleeper\"\n  env = { V = \"2\" }\n  hooks {\n    pre_start = [\"sh\", \"-c\", \"exit 3\"]\n  }\n}\n"
	dir, file := sleeperDir(t, good)
	c := startDaemon(t, Options{File: file, StateDir: filepath.Join(dir, ".plugs"), StableWait: 200 * time.Millisecond})
	waitStatus(t, c, "a running", func(s *api.Status) bool { return len(pids(s)) == 1 })

	writeFile(t, file+".new", bad)
	if err := os.Rename(file+".new", file); err != nil {
		t.Fatal(err)
	}
	if rep, err := c.Apply(context.Background()); err != nil || rep.Failed != 1 {
		t.Fatalf("apply of a version whose pre_start fails: %+v, %v; want one failed change", rep, err)
	}
	rolledBack := pids(waitStatus(t, c, "a running again", func(s *api.Status) bool { return len(pids(s)) == 1 }))

	// Another plug added: a file event's reconcile.
	start := time.Now()
	writeFile(t, file+".new", bad+"\nplug \"b\" {\n  source = \"./plugins/sleeper\"\n}\n")
	if err := os.Rename(file+".new", file); err != nil {
		t.Fatal(err)
	}
	st := settled(t, c, start)
	if got := pids(st); got["a/default"] != rolledBack["a/default"] || got["b/default"] == 0 {
		t.Errorf("after a file event: %v, want a on pid %d (not replaced again) and b running", got, rolledBack["a/default"])
	}
	if r := st.Daemon.LastReconcile; r == nil || !strings.Contains(r.Error, "held") || !strings.Contains(r.Error, "a/default") {
		t.Errorf("last reconcile %+v, want it to say a's replace is held", r)
	}

	// plugs apply tries again (and fails again).
	if rep, err := c.Apply(context.Background()); err != nil || rep.Failed != 1 {
		t.Errorf("plugs apply: %+v, %v; want the replace tried again and failing", rep, err)
	}
}

// TestIncompatibleVersionStopsNothing: a new version of a MobileOps plugin
// whose compatibility asks for a python3 this host lacks (the diagnostic
// is on plugin.json's own line) is refused at its plug; what runs keeps
// running.
func TestIncompatibleVersionStopsNothing(t *testing.T) {
	needTools(t, "python3")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "mo/plugin.json"), `{"name": "mo", "version": "1.0.0", "entry_point": "sleep 600"}`)
	file := filepath.Join(dir, "plugs.hcl")
	writeFile(t, file, "plug \"mo\" {\n  source = \"./mo\"\n}\n")
	c := startDaemon(t, Options{File: file, StateDir: filepath.Join(dir, ".plugs"), NoWatch: true})
	before := pids(waitStatus(t, c, "mo running", func(s *api.Status) bool { return len(pids(s)) == 1 }))
	writeFile(t, filepath.Join(dir, "mo/plugin.json"), `{"name": "mo", "version": "1.1.0", "entry_point": "sleep 601",
 "compatibility": {"python_version": ">=99.0"}}`)
	_, err := c.Apply(context.Background())
	var e *api.Error
	if !errors.As(err, &e) || e.Kind != api.KindInput || !strings.Contains(e.Error(), "Incompatible plugin") {
		t.Errorf("apply of an incompatible version: %v, want an input error saying so", err)
	}
	if st, err := c.Status(context.Background()); err != nil || !maps.Equal(pids(st), before) {
		t.Errorf("instances after the refused version: %v, want %v", pids(st), before)
	}
}
