package atomicfile_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/plugs-dev/plugs/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "state.json")
	for _, c := range []struct {
		data string
		perm os.FileMode
		sync atomicfile.Sync
	}{{"one\n", 0o600, atomicfile.Durable}, {"two, longer\n", 0o644, atomicfile.Fast}, {"3\n", 0o600, atomicfile.Durable}} {
		if err := atomicfile.Write(name, []byte(c.data), c.perm, c.sync); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(name)
		if err != nil || string(b) != c.data {
			t.Fatalf("content %q, %v; want %q", b, err, c.data)
		}
		if st, _ := os.Stat(name); st.Mode().Perm() != c.perm {
			t.Errorf("mode %v, want %v", st.Mode().Perm(), c.perm)
		}
	}
	// A failed write replaces nothing and leaves no temporary file.
	boom := errors.New("boom")
	err := atomicfile.WriteFunc(name, 0o600, atomicfile.Durable, func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if b, _ := os.ReadFile(name); string(b) != "3\n" {
		t.Errorf("after a failed write: %q", b)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// A missing folder is an error naming the file.
	if err := atomicfile.Write(filepath.Join(dir, "nope", "x"), nil, 0o600, atomicfile.Fast); err == nil {
		t.Error("write into a missing folder succeeded")
	}
}

// TestFileCommitAs: a streamed file takes its name at Commit (a
// content-addressed cache entry), with its mode from the start; before
// Commit the target does not exist; Abort leaves nothing; a name in another
// folder is refused (the rename would not be atomic there).
func TestFileCommitAs(t *testing.T) {
	dir := t.TempDir()
	f, err := atomicfile.Create(dir, "download", 0o640, atomicfile.Durable)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, "part one, "); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(f, "part two"); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "sum.tar.gz")
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Fatalf("the target exists before Commit: %v", err)
	}
	if err := f.Commit(name); err != nil {
		t.Fatal(err)
	}
	f.Abort() // deferred in callers: a no-op after Commit
	b, err := os.ReadFile(name)
	st, serr := os.Stat(name)
	if err != nil || string(b) != "part one, part two" || serr != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("committed %q %v, mode %v %v", b, err, st.Mode(), serr)
	}

	a, err := atomicfile.Create(dir, "aborted", 0o600, atomicfile.Fast)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(a, "never seen")
	a.Abort()
	o, err := atomicfile.Create(dir, "other", 0o600, atomicfile.Fast)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Commit(filepath.Join(t.TempDir(), "elsewhere")); err == nil {
		t.Error("a commit into another folder succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != "sum.tar.gz" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v, want only sum.tar.gz", names)
	}
}
