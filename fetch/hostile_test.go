package fetch

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/plugs-dev/plugs/internal/syncbuf"

	"github.com/plugs-dev/plugs/internal/gittest"
	"github.com/plugs-dev/plugs/spec"
)

// logStore is a store whose warnings and infos land in the returned buffer.
func logStore(t *testing.T, stateDir string, opts Options) (*Store, *syncbuf.Buffer) {
	t.Helper()
	var buf syncbuf.Buffer
	opts.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if stateDir == "" {
		stateDir = filepath.Join(t.TempDir(), ".plugs")
	}
	return Open(stateDir, opts), &buf
}

// TestExecBitIdentifiesTree: chmod alone changes a tree's hash, so a
// frozen fetch refuses the chmod-ed source and a plain fetch re-locks it.
func TestExecBitIdentifiesTree(t *testing.T) {
	d := deployment(t, plugOf("p", "./p", ""))
	localPlugin(t, d.BaseDir, "p", "")
	s := newStore(t)
	l := mustLock(t, s, d, nil)
	before := *l.Plugs["p"]
	if !strings.HasPrefix(before.Hash, "h2:") {
		t.Fatalf("hash %s", before.Hash)
	}
	if err := os.Chmod(filepath.Join(d.BaseDir, "p", "run.sh"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := hashDir(filepath.Join(d.BaseDir, "p"))
	if err != nil || h == before.Hash {
		t.Fatalf("chmod -x not seen: %s %v", h, err)
	}
	h1a, _ := hashDirAs(filepath.Join(d.BaseDir, "p"), hashH1)
	_ = os.Chmod(filepath.Join(d.BaseDir, "p", "run.sh"), 0o755)
	if h1b, _ := hashDirAs(filepath.Join(d.BaseDir, "p"), hashH1); h1a != h1b {
		t.Fatal("h1 should ignore the executable bit (it is what old locks hold)")
	}
	_ = os.Chmod(filepath.Join(d.BaseDir, "p", "run.sh"), 0o644)
	_ = removeTree(s.plugDir("p"))
	if _, err := s.Fetch(context.Background(), d, l, FetchOptions{Frozen: true}); err == nil || !strings.Contains(err.Error(), "hash mismatch") {
		t.Fatalf("frozen fetch of a chmod-ed source: %v", err)
	}
	mustFetch(t, s, d, l, false)
	if l.Plugs["p"].Hash == before.Hash {
		t.Fatal("lock not updated after chmod")
	}
}

// TestOldH1LockAcceptedAndUpgraded: a lock written before h2 (h1 hashes)
// is verified with h1 by a frozen fetch and Runnable, and upgraded to h2
// with a warning by a plain fetch and by plugs lock, keeping the commit.
func TestOldH1LockAcceptedAndUpgraded(t *testing.T) {
	root := t.TempDir()
	_, commits := pluginRepo(t, root, "hr")
	base := gittest.Daemon(t, root)
	d := deployment(t, plugOf("p", "./p", ""), plugOf("hr", "git::"+base+"/hr", "v1.2.0"))
	localPlugin(t, d.BaseDir, "p", "")

	// What plugs lock wrote before h2, made by hand.
	ref := newStore(t)
	now := mustLock(t, ref, d, nil)
	h1p, _ := hashDirAs(filepath.Join(d.BaseDir, "p"), hashH1)
	revp, _ := contentID(h1p)
	h1hr, _ := hashDirAs(ref.treeDir("hr", commits["v1.2.0"]), hashH1)
	old := func() *spec.Lock {
		return &spec.Lock{Plugs: map[string]*spec.LockedPlug{
			"p":  {Name: "p", Source: "./p", Revision: revp, Hash: h1p},
			"hr": {Name: "hr", Source: "git::" + base + "/hr", Constraint: "v1.2.0", Version: "v1.2.0", Revision: commits["v1.2.0"], Hash: h1hr},
		}}
	}

	s, logs := logStore(t, "", Options{})
	frozen := old()
	mustFetch(t, s, d, frozen, true)
	if _, err := s.Runnable(d, frozen); err != nil {
		t.Fatalf("runnable with an h1 lock: %v", err)
	}
	if frozen.Plugs["p"].Hash != h1p || frozen.Plugs["hr"].Hash != h1hr {
		t.Fatal("a frozen fetch rewrote the lock")
	}

	l := old()
	mustFetch(t, s, d, l, false)
	for _, name := range []string{"p", "hr"} {
		if got, want := *l.Plugs[name], *now.Plugs[name]; got.Hash != want.Hash || got.Revision != want.Revision {
			t.Errorf("%s upgraded to %s@%s, want %s@%s", name, got.Hash, got.Revision, want.Hash, want.Revision)
		}
	}
	if n := strings.Count(logs.String(), "upgraded the lock hash from h1: to h2:"); n != 2 {
		t.Errorf("%d upgrade warnings:\n%s", n, logs)
	}
	if _, err := s.Runnable(d, l); err != nil {
		t.Fatalf("runnable after the upgrade: %v", err)
	}

	s2, logs2 := logStore(t, "", Options{})
	l2 := mustLock(t, s2, d, old())
	if l2.Plugs["hr"].Hash != now.Plugs["hr"].Hash || l2.Plugs["hr"].Revision != commits["v1.2.0"] || l2.Plugs["p"].Hash != now.Plugs["p"].Hash {
		t.Errorf("plugs lock did not upgrade: %+v %+v", l2.Plugs["hr"], l2.Plugs["p"])
	}
	if n := strings.Count(logs2.String(), "upgraded the lock hash"); n != 2 {
		t.Errorf("%d upgrade warnings from lock:\n%s", n, logs2)
	}
}

// TestHandEditedLockHash: a lock hash edited by hand is reported as such,
// not as a changed source: refused by a frozen fetch, rewritten with a
// warning that says so by a plain one and by plugs lock.
func TestHandEditedLockHash(t *testing.T) {
	d := deployment(t, plugOf("p", "./p", ""))
	localPlugin(t, d.BaseDir, "p", "")
	s, logs := logStore(t, "", Options{})
	l := mustLock(t, s, d, nil)
	good := *l.Plugs["p"]
	edited := func() *spec.Lock {
		e := good
		e.Hash = "h2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		return &spec.Lock{Plugs: map[string]*spec.LockedPlug{"p": &e}}
	}
	_, err := s.Fetch(context.Background(), d, edited(), FetchOptions{Frozen: true})
	if err == nil || !IsInputError(err) || !strings.Contains(err.Error(), "edited by hand") {
		t.Fatalf("frozen: %v", err)
	}
	l = edited()
	mustFetch(t, s, d, l, false)
	if *l.Plugs["p"] != good {
		t.Errorf("not restored: %+v", l.Plugs["p"])
	}
	if !strings.Contains(logs.String(), "lock entry edited by hand") || strings.Contains(logs.String(), "local source changed") {
		t.Errorf("logs:\n%s", logs)
	}
	l = mustLock(t, s, d, edited())
	if *l.Plugs["p"] != good || strings.Count(logs.String(), "lock entry edited by hand") != 2 {
		t.Errorf("lock: %+v\n%s", l.Plugs["p"], logs)
	}
}

// TestSourceNotFileOrFolder: a FIFO named x.zip and a device are refused
// without opening them (opening a FIFO blocks).
func TestSourceNotFileOrFolder(t *testing.T) {
	d := deployment(t, plugOf("f", "./x.zip", ""), plugOf("dev", "/dev/null", ""), plugOf("devzip", "./null.zip", ""))
	if err := syscall.Mkfifo(filepath.Join(d.BaseDir, "x.zip"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	if err := os.Symlink("/dev/null", filepath.Join(d.BaseDir, "null.zip")); err != nil {
		t.Fatal(err)
	}
	_, err := newStore(t).Lock(context.Background(), d, nil, nil)
	if err == nil || !IsInputError(err) {
		t.Fatalf("lock: %v", err)
	}
	for _, want := range []string{"x.zip is not a regular file (a FIFO)", "/dev/null is not a folder (a device)", "null.zip is not a regular file (a device)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestLockObeysContextWhileSourceHangs: plugs lock returns on SIGINT (its
// context ends) while a source does not answer.
func TestLockObeysContextWhileSourceHangs(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	d := deployment(t, plugOf("slow", srv.URL+"/slow.zip", ""))
	localPlugin(t, d.BaseDir, "p", "")
	d.Plugs = append(d.Plugs, plugOf("p", "./p", ""))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel() // what SIGINT does to plugs lock
	}()
	_, err := Open(filepath.Join(t.TempDir(), ".plugs"), Options{HTTPClient: srv.Client()}).Lock(ctx, d, nil, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("lock: %v", err)
	}

	// A blocking file system step is left behind, not waited for.
	block := make(chan struct{})
	defer close(block)
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := withContext(ctx2, func() error { <-block; return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("withContext: %v", err)
	}
}

// TestSymlinkedSourceIsCopied: a local source that is a symlink to a
// folder outside the deployment is fetched as its content (the tree is a
// folder, its hash covers the files, a later change outside is seen), and
// the bundle of it unpacks.
func TestSymlinkedSourceIsCopied(t *testing.T) {
	outside := t.TempDir()
	localPlugin(t, outside, "real", "")
	d := deployment(t, plugOf("p", "./p", ""))
	if err := os.Symlink(filepath.Join(outside, "real"), filepath.Join(d.BaseDir, "p")); err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	l := mustLock(t, s, d, nil)
	trees := mustFetch(t, s, d, l, true)
	if st, err := os.Lstat(trees[0].Dir); err != nil || !st.IsDir() {
		t.Fatalf("tree %s is not a folder: %v", trees[0].Dir, err)
	}
	if got := readFile(t, filepath.Join(trees[0].Dir, "run.sh")); !strings.Contains(got, "echo real") {
		t.Fatalf("run.sh = %q", got)
	}
	bundle := filepath.Join(t.TempDir(), "b.tar.gz")
	if err := s.WriteBundle(context.Background(), bundle, d, l); err != nil {
		t.Fatal(err)
	}
	if _, err := Unbundle(context.Background(), bundle, filepath.Join(t.TempDir(), "state")); err != nil {
		t.Fatalf("unbundle: %v", err)
	}
	if err := os.WriteFile(filepath.Join(outside, "real", "run.sh"), []byte("#!/bin/sh\necho evil\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Runnable(d, l); err != nil {
		t.Fatalf("the store's copy should be untouched: %v", err)
	}
	if _, err := newStore(t).Fetch(context.Background(), d, l, FetchOptions{Frozen: true}); err == nil || !strings.Contains(err.Error(), "hash mismatch") {
		t.Fatalf("a changed outside folder must not match the lock: %v", err)
	}
}

// TestLinksLeavingTreeRefused: a symlink inside a plugin that leaves it, or
// dangles, is refused at fetch (a bundle of it would not unpack).
func TestLinksLeavingTreeRefused(t *testing.T) {
	for target, want := range map[string]string{"../../../etc/passwd": "points outside", "/etc/passwd": "points outside", "missing": "points at nothing"} {
		d := deployment(t, plugOf("p", "./p", ""))
		localPlugin(t, d.BaseDir, "p", "")
		if err := os.Symlink(target, filepath.Join(d.BaseDir, "p", "data")); err != nil {
			t.Fatal(err)
		}
		_, err := newStore(t).Lock(context.Background(), d, nil, nil)
		if err == nil || !IsInputError(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("link to %s: %v", target, err)
		}
	}
}

// TestArchiveURL: https:// and http:// archive sources are downloaded with
// a progress line, pinned by sha256 and h2 in the lock, served from the
// cache afterwards (no request), and refused when the archive changed.
func TestArchiveURL(t *testing.T) {
	zipped := zipOf(t, dirEntry("z/"), reg("z/plugin.hcl", manifestHCL("z", "")), reg("z/run.sh", "#!/bin/sh\necho z\n"))
	for name, newServer := range map[string]func(http.Handler) *httptest.Server{"http": httptest.NewServer, "https": httptest.NewTLSServer} {
		t.Run(name, func(t *testing.T) {
			var body atomic.Pointer[[]byte]
			body.Store(&zipped)
			var requests atomic.Int32
			srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				w.Write(*body.Load())
			}))
			defer srv.Close()
			if !strings.HasPrefix(srv.URL, name+"://127.0.0.1:") {
				t.Fatalf("server at %s", srv.URL)
			}
			d := deployment(t, plugOf("z", srv.URL+"/dl/z.zip", ""))
			var progress bytes.Buffer
			state := filepath.Join(t.TempDir(), ".plugs")
			s := Open(state, Options{HTTPClient: srv.Client(), Progress: &progress})
			l := mustLock(t, s, d, nil)
			e := l.Plugs["z"]
			if len(e.SHA256) != 64 || !strings.HasPrefix(e.Hash, "h2:") || len(e.Revision) != 64 {
				t.Fatalf("lock entry %+v", e)
			}
			if !strings.Contains(progress.String(), "download z "+srv.URL+"/dl/z.zip") || !strings.Contains(progress.String(), "done") {
				t.Errorf("progress:\n%s", progress.String())
			}
			if !strings.Contains(string(FormatLock(l)), `sha256   = "`+e.SHA256+`"`) {
				t.Errorf("lock file:\n%s", FormatLock(l))
			}
			// Lock again keeps the pin without downloading.
			n := requests.Load()
			mustLock(t, s, d, l)
			// A fresh store on the same state dir: from the cache.
			_ = removeTree(filepath.Join(state, "plugins"))
			trees := mustFetch(t, Open(state, Options{HTTPClient: srv.Client()}), d, l, true)
			if requests.Load() != n || trees[0].Manifest.Name != "z" {
				t.Errorf("%d requests after the first lock, want %d; tree %+v", requests.Load(), n, trees[0])
			}
			// The archive changes on the server: refused, named.
			changed := zipOf(t, dirEntry("z/"), reg("z/plugin.hcl", manifestHCL("z", "")), reg("z/run.sh", "#!/bin/sh\necho evil\n"))
			body.Store(&changed)
			_, err := Open(filepath.Join(t.TempDir(), ".plugs"), Options{HTTPClient: srv.Client()}).Fetch(context.Background(), d, l, FetchOptions{Frozen: true})
			if err == nil || !IsInputError(err) || !strings.Contains(err.Error(), "the archive at "+srv.URL+"/dl/z.zip changed") {
				t.Fatalf("changed archive: %v", err)
			}
			// Offline with the cache: fine; without: a clear error.
			if _, err := Open(state, Options{Offline: true}).Fetch(context.Background(), d, l, FetchOptions{Frozen: true}); err != nil {
				t.Errorf("offline from the cache: %v", err)
			}
			if _, err := Open(filepath.Join(t.TempDir(), ".plugs"), Options{Offline: true}).Fetch(context.Background(), d, l, FetchOptions{Frozen: true}); err == nil || !strings.Contains(err.Error(), "offline") {
				t.Errorf("offline without the cache: %v", err)
			}
		})
	}
}

// TestUnbundleRefusesFIFO: plugs run --bundle of a FIFO is refused, not a hang.
func TestUnbundleRefusesFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "current.tar.gz")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	_, err := Unbundle(context.Background(), fifo, filepath.Join(t.TempDir(), "state"))
	if err == nil || !IsInputError(err) || !strings.Contains(err.Error(), "not a regular file (a FIFO)") {
		t.Fatalf("unbundle of a FIFO: %v", err)
	}
}
