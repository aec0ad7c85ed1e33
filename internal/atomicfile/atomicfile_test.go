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
