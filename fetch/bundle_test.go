package fetch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/spec"
)

// localPlugin writes a plugin folder; build "" means none.
func localPlugin(t testing.TB, dir, name, build string) {
	t.Helper()
	files := map[string]string{
		"plugin.hcl": manifestHCL(name, build),
		"run.sh":     "#!/bin/sh\necho " + name + "\n",
		"build.sh":   "echo building " + name + "\necho artifact > out.bin\n",
	}
	for n, c := range files {
		p := filepath.Join(dir, name, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBuildAndRunnable(t *testing.T) {
	d := deployment(t, plugOf("b", "./b", ""), plugOf("plain", "./plain", ""))
	localPlugin(t, d.BaseDir, "b", `["sh", "build.sh"]`)
	localPlugin(t, d.BaseDir, "plain", "")
	s := newStore(t)
	l := mustLock(t, s, d, nil)
	mustFetch(t, s, d, l, true)
	if _, err := s.Runnable(d, l); err == nil || !strings.Contains(err.Error(), "plug b: not built; run plugs build") {
		t.Fatalf("runnable before build: %v", err)
	}
	trees, err := s.Build(context.Background(), d, l)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(trees[0].Dir, "out.bin")); got != "artifact\n" {
		t.Errorf("out.bin = %q", got)
	}
	if err := os.WriteFile(filepath.Join(trees[0].Dir, "x"), nil, 0o644); err == nil {
		if os.Geteuid() != 0 {
			t.Error("a built tree is writable")
		}
		os.Remove(filepath.Join(trees[0].Dir, "x")) // root writes anyway
	}
	if st, _ := os.Stat(filepath.Join(trees[0].Dir, "out.bin")); st.Mode()&0o222 != 0 {
		t.Errorf("built files must be read-only: %v", st.Mode())
	}
	run, err := s.Runnable(d, l)
	if err != nil || run["b"].Dir != trees[0].Dir || !run["plain"].Built {
		t.Fatalf("runnable: %v %v", run, err)
	}
	// Built once: a second build runs nothing (the log is not rewritten).
	logPath := filepath.Join(s.plugDir("b"), trees[0].Revision+".build.log")
	if err := os.Remove(logPath); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Build(context.Background(), d, l); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(logPath); err == nil {
		t.Error("an already built tree was built again")
	}
	// A modified tree never runs.
	out := filepath.Join(trees[0].Dir, "out.bin")
	_ = os.Chmod(out, 0o644)
	if err := os.WriteFile(out, []byte("evil"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Runnable(d, l); err == nil || !strings.Contains(err.Error(), "plug b: tree") || !strings.Contains(err.Error(), "was modified") {
		t.Fatalf("runnable of a modified tree: %v", err)
	}
}

func TestFrozen(t *testing.T) {
	d := deployment(t, plugOf("p", "./p", ""))
	localPlugin(t, d.BaseDir, "p", "")
	s := newStore(t)
	ctx := context.Background()
	if _, err := s.Fetch(ctx, d, &spec.Lock{}, FetchOptions{Frozen: true}); err == nil || !strings.Contains(err.Error(), "plug p: not in plugs.lock.hcl; run plugs lock") {
		t.Fatalf("missing entry: %v", err)
	}
	l := mustLock(t, s, d, nil)
	// The local source changes: frozen refuses, naming both hashes; a plain
	// fetch re-resolves and updates the lock in place.
	if err := os.WriteFile(filepath.Join(d.BaseDir, "p", "run.sh"), []byte("changed"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = removeTree(s.plugDir("p"))
	old := *l.Plugs["p"]
	_, err := s.Fetch(ctx, d, l, FetchOptions{Frozen: true})
	if err == nil || !IsInputError(err) || !strings.Contains(err.Error(), "plugs.lock.hcl has "+old.Hash+", the content has h2:") {
		t.Fatalf("frozen with changed content: %v", err)
	}
	mustFetch(t, s, d, l, false)
	if l.Plugs["p"].Hash == old.Hash || l.Plugs["p"].Revision == old.Revision {
		t.Error("fetch did not update the lock of a changed local source")
	}
	// Lock is byte-stable and round-trips through the spec parser.
	b1 := FormatLock(l)
	l2 := mustLock(t, s, d, l)
	if b2 := FormatLock(l2); !bytes.Equal(b1, b2) {
		t.Errorf("lock changed on a second run:\n%s\n%s", b1, b2)
	}
	f := filepath.Join(d.BaseDir, "plugs.lock.hcl")
	if err := WriteLock(f, l2); err != nil {
		t.Fatal(err)
	}
	parsed, diags := spec.NewParser().LoadLock(f)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := parsed.Plugs["p"]; got.Hash != l2.Plugs["p"].Hash || got.Revision != l2.Plugs["p"].Revision {
		t.Errorf("round trip: %+v", got)
	}
}

func TestArchiveSource(t *testing.T) {
	d := deployment(t, plugOf("z", "./up.fp", ""), plugOf("tg", "./up.tgz", ""))
	zb := zipOf(t, dirEntry("z/"), reg("z/plugin.hcl", manifestHCL("z", "")), reg("z/run.sh", "echo z"))
	tb := tarGz(t, reg("plugin.hcl", manifestHCL("tg", "")), reg("run.sh", "echo tg"))
	os.WriteFile(filepath.Join(d.BaseDir, "up.fp"), zb, 0o644)
	os.WriteFile(filepath.Join(d.BaseDir, "up.tgz"), tb, 0o644)
	s := newStore(t)
	l := mustLock(t, s, d, nil)
	trees := mustFetch(t, s, d, l, true)
	if trees[0].Manifest.Name != "z" || trees[1].Manifest.Name != "tg" || len(trees[0].Revision) != 64 {
		t.Errorf("trees %+v %+v", trees[0], trees[1])
	}
	evil := filepath.Join(d.BaseDir, "evil.zip")
	os.WriteFile(evil, zipOf(t, reg("../evil", "x")), 0o644)
	d2 := deployment(t, plugOf("e", evil, ""))
	if _, err := s.Lock(context.Background(), d2, nil, nil); err == nil || !strings.Contains(err.Error(), `".." is not allowed`) {
		t.Fatalf("hostile plugin archive: %v", err)
	}
}

func makeBundle(t testing.TB) (string, *spec.Deployment, *spec.Lock) {
	d := deployment(t, plugOf("b", "./b", ""), plugOf("plain", "./plain", ""))
	localPlugin(t, d.BaseDir, "b", `["sh", "build.sh"]`)
	localPlugin(t, d.BaseDir, "plain", "")
	s := newStore(t)
	l := &spec.Lock{}
	out := filepath.Join(t.TempDir(), "site.tar.gz")
	if err := s.WriteBundle(context.Background(), out, d, l); err != nil {
		t.Fatal(err)
	}
	return out, d, l
}

func TestBundle(t *testing.T) {
	out, d, l := makeBundle(t)
	state := filepath.Join(t.TempDir(), "host")
	file, err := Unbundle(context.Background(), out, state)
	if err != nil {
		t.Fatal(err)
	}
	if file != filepath.Join(state, "bundle", "plugs.hcl") || readFile(t, file) != readFile(t, d.Filename) {
		t.Errorf("deployment %s", file)
	}
	if got := readFile(t, filepath.Join(state, "bundle", "plugs.lock.hcl")); got != string(FormatLock(l)) {
		t.Errorf("lock in bundle:\n%s", got)
	}
	run, err := Open(state, Options{Offline: true}).Runnable(d, l)
	if err != nil || len(run) != 2 {
		t.Fatalf("runnable after unbundle: %v %v", run, err)
	}
	if _, err := Unbundle(context.Background(), out, state); err != nil {
		t.Fatalf("unbundle again: %v", err)
	}
}

func TestBundleTampered(t *testing.T) {
	out, _, _ := makeBundle(t)
	for name, change := range map[string]func(h *tar.Header, body []byte) []byte{
		"one byte": func(h *tar.Header, body []byte) []byte {
			if strings.HasSuffix(h.Name, "/run.sh") {
				body = append([]byte(nil), body...)
				body[0] ^= 1
			}
			return body
		},
		"extra file": nil,
	} {
		t.Run(name, func(t *testing.T) {
			bad := rewriteTarGz(t, out, change)
			state := t.TempDir()
			_, err := Unbundle(context.Background(), bad, state)
			if err == nil || !IsInputError(err) {
				t.Fatalf("tampered bundle accepted: %v", err)
			}
			if ents, _ := os.ReadDir(filepath.Join(state, "plugins")); len(ents) != 0 {
				t.Error("a rejected bundle installed plugins")
			}
		})
	}
}

// rewriteTarGz copies a .tar.gz, passing each file through change; a nil
// change appends an unlisted file instead.
func rewriteTarGz(t testing.TB, in string, change func(*tar.Header, []byte) []byte) string {
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		if change != nil {
			body = change(h, body)
		}
		tw.WriteHeader(h)
		tw.Write(body)
	}
	if change == nil {
		tw.WriteHeader(&tar.Header{Name: "plugins/b/extra", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
		tw.Write([]byte("x"))
	}
	tw.Close()
	zw.Close()
	out := filepath.Join(t.TempDir(), "bad.tar.gz")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOfflineUnbundle unpacks and validates a bundle with the plugs binary
// inside a network namespace without interfaces.
func TestOfflineUnbundle(t *testing.T) {
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("unshare -n is not permitted here: %v", err)
	}
	out, _, _ := makeBundle(t)
	bin := filepath.Join(t.TempDir(), "plugs")
	if b, err := exec.Command("go", "build", "-o", bin, "github.com/plugs-dev/plugs/cmd/plugs").CombinedOutput(); err != nil {
		t.Skipf("cannot build plugs (another package may be mid-edit): %v\n%s", err, b)
	}
	state := filepath.Join(t.TempDir(), "host")
	script := `set -e
test "$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ')" = lo
"$1" fetch --bundle "$2" --state-dir "$3"
"$1" fetch --frozen -q -f "$3/bundle/plugs.hcl" --state-dir "$3"
"$1" validate -f "$3/bundle/plugs.hcl" --state-dir "$3"`
	cmd := exec.Command("unshare", "-n", "sh", "-c", script, "sh", bin, out, state)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("offline unbundle: %v\n%s", err, b)
	}
	if !strings.Contains(string(b), "Unpacked") {
		t.Errorf("output:\n%s", b)
	}
}
