package spec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// lockText is a lock of the plugs named, as plugs lock writes it; gen
// changes the hash of each.
func lockText(names []string, gen map[string]int) string {
	var b strings.Builder
	b.WriteString("# This file is maintained automatically by \"plugs lock\".\n# Manual edits may be lost in future updates.\n\n")
	for i, n := range names {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "plug %q {\n  source   = \"./%s\"\n  revision = \"%064x\"\n  hash     = \"h2:%d=\"\n}\n", n, n, gen[n], gen[n])
	}
	return b.String()
}

// checkLockCache loads file through c and without a cache, and fails t
// unless both give the same lock, the same diagnostics, the same bytes and
// the same files for the snippets.
func checkLockCache(t *testing.T, c *LockCache, file string) {
	t.Helper()
	pa, pb := NewParser(), NewParser()
	la, src, da := pa.LoadLockCached(file, c)
	lb, db := pb.LoadLock(file)
	if !reflect.DeepEqual(la, lb) {
		t.Fatalf("lock through the cache:\n%#v\nwithout:\n%#v", la, lb)
	}
	if got, want := diagStrings(da), diagStrings(db); !slices.Equal(got, want) {
		t.Fatalf("diagnostics through the cache:\n%q\nwithout:\n%q", got, want)
	}
	if disk, _ := os.ReadFile(file); !db.HasErrors() && !bytes.Equal(src, disk) {
		t.Fatalf("bytes returned are not the file's")
	}
	fa, fb := pa.Files(), pb.Files()
	if len(fa) != len(fb) {
		t.Fatalf("%d files through the cache, %d without", len(fa), len(fb))
	}
	for name, f := range fb {
		if !bytes.Equal(fa[name].Bytes, f.Bytes) || !reflect.DeepEqual(fa[name].Body, f.Body) {
			t.Fatalf("file %s for the snippets differs through the cache", name)
		}
	}
}

// diagStrings are diags in a comparable form, sorted (a block's attributes
// are checked in map order).
func diagStrings(diags hcl.Diagnostics) []string {
	out := make([]string, 0, len(diags))
	for _, d := range diags {
		s := fmt.Sprintf("%d %s: %s", d.Severity, d.Summary, d.Detail)
		if d.Subject != nil {
			s += " @" + d.Subject.String()
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// TestLockCacheMatchesParseLock runs a lock through the edits a daemon's
// reconciles see (the side-by-side's: entries removed at the top, added at
// the end, changed in the middle; comments and blank lines moved; bad
// entries that must be reported as ParseLock reports them, then fixed) with
// one cache, comparing every load with one without it.
func TestLockCacheMatchesParseLock(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, LockFileName)
	var names []string
	gen := map[string]int{}
	for i := range 200 { // more than 2*parallelLockPieces: a first read decodes in parallel
		names = append(names, fmt.Sprintf("c%05d", i))
	}
	next := len(names)
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := &LockCache{}
	steps := []struct {
		name string
		edit func() string
	}{
		{"first", func() string { return lockText(names, gen) }},
		{"same again", func() string { return lockText(names, gen) }},
		{"tenth removed, changed, added", func() string {
			names = names[5:]
			for _, n := range names[:5] {
				gen[n]++
			}
			for range 5 {
				names = append(names, fmt.Sprintf("c%05d", next))
				next++
			}
			return lockText(names, gen)
		}},
		{"comment and blank lines on top", func() string { return "# mine\n\n\n" + lockText(names, gen) }},
		{"CRLF", func() string { return strings.ReplaceAll(lockText(names, gen), "\n", "\r\n") }},
		{"no trailing newline", func() string { return strings.TrimSuffix(lockText(names, gen), "\n") }},
		{"duplicate entry", func() string {
			s := lockText(names, gen)
			return s + "\n" + lockText(names[:1], gen)[strings.Index(lockText(names[:1], gen), "plug"):]
		}},
		{"bad hash", func() string {
			return strings.Replace(lockText(names, gen), `hash     = "h2:0="`, `hash     = "md5:0"`, 1)
		}},
		{"unknown attribute", func() string {
			return strings.Replace(lockText(names, gen), "  source", "  extra = 1\n  source", 1)
		}},
		{"expression", func() string {
			return strings.Replace(lockText(names, gen), `"./c00005"`, `"${var.x}"`, 1)
		}},
		{"top-level attribute", func() string { return "x = 1\n" + lockText(names, gen) }},
		{"unclosed block", func() string { return lockText(names, gen) + "plug \"zz\" {\n" }},
		{"fixed", func() string { return lockText(names, gen) }},
		{"moved by one line", func() string { return "\n" + lockText(names, gen) }},
		{"reordered", func() string {
			r := slices.Clone(names)
			slices.Reverse(r)
			return lockText(r, gen)
		}},
		{"empty", func() string { return "" }},
		{"one entry", func() string { return lockText(names[:1], gen) }},
		{"all back", func() string { return lockText(names, gen) }},
	}
	for _, st := range steps {
		write(st.edit())
		t.Run(st.name, func(t *testing.T) { checkLockCache(t, c, file) })
	}
	// The file renamed: the entries' ranges name the new file.
	other := filepath.Join(dir, "sub", LockFileName)
	if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, []byte(lockText(names, gen)), 0o644); err != nil {
		t.Fatal(err)
	}
	checkLockCache(t, c, other)
}

// TestLockCacheHits checks that the cache serves unchanged entries: a lock
// read again after a tenth of it changed decodes only that tenth.
func TestLockCacheHits(t *testing.T) {
	file := filepath.Join(t.TempDir(), LockFileName)
	var names []string
	for i := range 100 {
		names = append(names, fmt.Sprintf("c%05d", i))
	}
	gen := map[string]int{}
	if err := os.WriteFile(file, []byte(lockText(names, gen)), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &LockCache{}
	if _, _, diags := NewParser().LoadLockCached(file, c); diags.HasErrors() {
		t.Fatal(diags)
	}
	if len(c.pieces) < len(names) {
		t.Fatalf("%d pieces cached, want at least %d", len(c.pieces), len(names))
	}
	for _, n := range names[:10] {
		gen[n]++
	}
	if err := os.WriteFile(file, []byte("\n"+lockText(names, gen)), 0o644); err != nil {
		t.Fatal(err)
	}
	before := c.pieces
	l, _, diags := NewParser().LoadLockCached(file, c)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	reused := 0
	for piece := range c.pieces {
		if old, ok := before[piece]; ok && c.pieces[piece].plug == old.plug {
			reused++
		}
	}
	if reused < 90 {
		t.Fatalf("%d pieces reused, want at least 90 of 100 entries", reused)
	}
	// Moved down one line: the ranges say so.
	if got := l.Plugs["c00099"].DeclRange.Start.Line; got != 4+99*6+1 {
		t.Fatalf("c00099 at line %d, want %d", got, 4+99*6+1)
	}
}

// FuzzLockCache loads a sequence of lock files (the input cut at NUL bytes)
// through one cache and without it: the same lock, diagnostics and
// snippets each time, whatever the input.
func FuzzLockCache(f *testing.F) {
	names := []string{"a", "b", "c", "d", "e"}
	gen := map[string]int{"c": 1}
	f.Add([]byte(lockText(names, nil) + "\x00" + lockText(names[1:], gen) + "\x00" + lockText(names, gen)))
	f.Add([]byte(lockText(names, nil) + "\x00" + "# x\n" + lockText(names, nil) + "\x00" + lockText(append(names, "a"), nil)))
	f.Add([]byte("plug \"a\" {\n  source = \"https://h/a.zip\"\n  revision = \"00\"\n  hash = \"h2:AAAA\"\n  sha256 = \"" + strings.Repeat("0", 64) + "\"\n}\n\x00plug \"a\" {\n  source = <<EOT\nx\nEOT\n  revision = \"0\"\n  hash = \"h2:\"\n}\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		file := filepath.Join(dir, LockFileName)
		c := &LockCache{}
		for i, src := range bytes.Split(data, []byte{0}) {
			if i >= 8 {
				break
			}
			if err := os.WriteFile(file, src, 0o644); err != nil {
				t.Fatal(err)
			}
			checkLockCache(t, c, file)
		}
	})
}

// BenchmarkLoadLock reads a lock of 1,000 entries of which a tenth was
// removed at the top and a tenth added since the last read (what a
// daemon's reconcile of the side-by-side's converge reads): without a
// cache (LoadLock), through a LockCache that read the last lock, and
// through an empty one (a command's first read).
func BenchmarkLoadLock(b *testing.B) {
	file := filepath.Join(b.TempDir(), LockFileName)
	var names []string
	for i := range 1100 {
		names = append(names, fmt.Sprintf("c%05d", i))
	}
	last, cur := []byte(lockText(names[:1000], nil)), []byte(lockText(names[100:], nil))
	if err := os.WriteFile(file, cur, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			if _, diags := NewParser().LoadLock(file); diags.HasErrors() {
				b.Fatal(diags)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		warm := &LockCache{}
		if _, ok := warm.decode(NewParser(), last, file); !ok {
			b.Fatal("not decoded piece by piece")
		}
		for b.Loop() {
			b.StopTimer()
			c := &LockCache{filename: warm.filename, pieces: warm.pieces}
			b.StartTimer()
			if _, _, diags := NewParser().LoadLockCached(file, c); diags.HasErrors() {
				b.Fatal(diags)
			}
		}
	})
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			if _, _, diags := NewParser().LoadLockCached(file, &LockCache{}); diags.HasErrors() {
				b.Fatal(diags)
			}
		}
	})
}
