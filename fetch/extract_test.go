package fetch

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one archive member for the hostile-archive builders.
type entry struct {
	name, body, link string
	kind             byte // tar typeflag; zip supports reg, dir, symlink
	mode             int64
}

func reg(name, body string) entry {
	return entry{name: name, body: body, kind: tar.TypeReg, mode: 0o644}
}
func link(name, to string) entry {
	return entry{name: name, link: to, kind: tar.TypeSymlink, mode: 0o777}
}
func dirEntry(name string) entry        { return entry{name: name, kind: tar.TypeDir, mode: 0o755} }
func special(name string, k byte) entry { return entry{name: name, kind: k, mode: 0o644} }

func tarGz(t testing.TB, entries ...entry) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.kind, Mode: e.mode, Size: int64(len(e.body)), Linkname: e.link}
		if e.kind != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.kind == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

func zipOf(t testing.TB, entries ...entry) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		body := e.body
		switch e.kind {
		case tar.TypeDir:
			h.SetMode(fs.ModeDir | 0o755)
		case tar.TypeSymlink:
			h.SetMode(fs.ModeSymlink | 0o777)
			body = e.link
		case tar.TypeFifo:
			h.SetMode(fs.ModeNamedPipe | 0o644)
		default:
			h.SetMode(fs.FileMode(e.mode))
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	zw.Close()
	return buf.Bytes()
}

// hostile are archives that must be refused, by expected error.
var hostile = []struct {
	name    string
	entries []entry
	want    string
}{
	{"absolute", []entry{reg("/etc/evil", "x")}, "absolute paths"},
	{"dotdot", []entry{reg("a/../../evil", "x")}, `".." is not allowed`},
	{"symlink out", []entry{link("l", "../../etc")}, "leaves the archive"},
	{"absolute symlink", []entry{link("l", "/etc/passwd")}, "leaves the archive"},
	{"symlink chain out", []entry{link("a", "."), link("b", "a/.."), reg("ok", "x")}, "leaves the archive"},
	{"write through symlink", []entry{dirEntry("d/"), link("s", "d"), reg("s/f", "x")}, "is not a folder"},
	{"duplicate", []entry{reg("a", "1"), reg("a", "2")}, "duplicate entry"},
	{"duplicate cleaned", []entry{reg("a/b", "1"), reg("a//b", "2")}, "duplicate entry"},
	{"hardlink", []entry{reg("a", "1"), {name: "b", link: "a", kind: tar.TypeLink}}, "hardlinks"},
	{"fifo", []entry{special("p", tar.TypeFifo)}, "not allowed"},
	{"device", []entry{special("dev", tar.TypeChar)}, "not allowed"},
	{"too big", []entry{reg("big", strings.Repeat("x", 2048))}, "larger than 1024 bytes"},
	{"too many", []entry{reg("1", ""), reg("2", ""), reg("3", ""), reg("4", ""), reg("5", "")}, "more than 4 entries"},
}

var testLimits = ExtractLimits{MaxBytes: 1024, MaxFiles: 4}

func extractBytes(t testing.TB, b []byte) (string, error) {
	parent := t.TempDir()
	dst := filepath.Join(parent, "out")
	err := Extract(bytes.NewReader(b), int64(len(b)), dst, testLimits)
	return parent, err
}

// onlyTarget fails unless parent holds nothing but (maybe) "out".
func onlyTarget(t testing.TB, parent string) {
	ents, _ := os.ReadDir(parent)
	for _, e := range ents {
		if e.Name() != "out" {
			t.Fatalf("extraction wrote %s outside its target", e.Name())
		}
	}
}

func TestExtractHostile(t *testing.T) {
	for _, tc := range hostile {
		for format, build := range map[string]func(testing.TB, ...entry) []byte{"tar.gz": tarGz, "zip": zipOf} {
			if format == "zip" && (tc.entries[len(tc.entries)-1].kind == tar.TypeLink || tc.entries[0].kind == tar.TypeChar) {
				continue // zip cannot express these
			}
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				parent, err := extractBytes(t, build(t, tc.entries...))
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want %q", err, tc.want)
				}
				onlyTarget(t, parent)
				if _, err := os.Lstat(filepath.Join(parent, "out")); err == nil {
					t.Error("a refused archive left its target behind")
				}
			})
		}
	}
}

func TestExtractGood(t *testing.T) {
	entries := []entry{dirEntry("p/"), reg("p/plugin.hcl", "plugin"), {name: "p/run.sh", body: "#!/bin/sh\n", kind: tar.TypeReg, mode: 0o4755}, link("p/l", "run.sh")}
	for format, b := range map[string][]byte{"tar.gz": tarGz(t, entries...), "zip": zipOf(t, entries...)} {
		parent, err := extractBytes(t, b)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		st, err := os.Stat(filepath.Join(parent, "out", "p", "run.sh"))
		if err != nil || st.Mode().Perm() != 0o755 || st.Mode()&fs.ModeSetuid != 0 {
			t.Errorf("%s: run.sh mode %v (setuid dropped, executable kept): %v", format, st.Mode(), err)
		}
		if got, _ := os.Readlink(filepath.Join(parent, "out", "p", "l")); got != "run.sh" {
			t.Errorf("%s: link = %q", format, got)
		}
	}
}

func FuzzExtract(f *testing.F) {
	for _, tc := range hostile {
		f.Add(tarGz(f, tc.entries...))
		f.Add(zipOf(f, tc.entries...))
	}
	f.Add(tarGz(f, dirEntry("p/"), reg("p/a", "a"), link("p/l", "a")))
	f.Add(zipOf(f, dirEntry("p/"), reg("p/a", "a"), link("p/l", "a")))
	f.Fuzz(func(t *testing.T, b []byte) {
		parent, err := extractBytes(t, b)
		onlyTarget(t, parent)
		if err != nil {
			if _, serr := os.Lstat(filepath.Join(parent, "out")); serr == nil {
				t.Fatal("a refused archive left its target behind")
			}
			return
		}
		root := filepath.Join(parent, "out")
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				real, err := filepath.EvalSymlinks(p)
				if err != nil || !strings.HasPrefix(real+"/", root+"/") {
					t.Fatalf("symlink %s resolves to %q (%v), outside the target", p, real, err)
				}
			}
			return nil
		})
	})
}
