package fetch

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/spec"
)

// TestFetchRunnableIsFetchThenRunnable: FetchRunnable returns the trees
// Runnable returns after Fetch, and refuses what Runnable refuses: a tree
// modified in the store (its content hashed again since its metadata
// changed) and a tree that needs a build it has not had.
func TestFetchRunnableIsFetchThenRunnable(t *testing.T) {
	d := deployment(t, plugOf("a", "./a", ""), plugOf("b", "./b", ""))
	localPlugin(t, d.BaseDir, "a", "")
	localPlugin(t, d.BaseDir, "b", "")
	s := newStore(t)
	ctx := context.Background()
	l := &spec.Lock{}
	got, err := s.FetchRunnable(ctx, d, l, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fetch(ctx, d, l, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	want, err := s.Runnable(d, l)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || len(got) != 2 {
		t.Fatalf("FetchRunnable = %+v, Fetch then Runnable = %+v", got, want)
	}

	// b's tree modified in the store: refused, whatever its marker says.
	f := filepath.Join(got["b"].Dir, "run.sh")
	_ = os.Chmod(got["b"].Dir, 0o755)
	_ = os.Chmod(f, 0o755)
	if err := os.WriteFile(f, []byte("#!/bin/sh\necho evil\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if trees, err := s.FetchRunnable(ctx, d, l, FetchOptions{}); err == nil || trees != nil ||
		!strings.Contains(err.Error(), "plug b: tree") || !strings.Contains(err.Error(), "was modified") {
		t.Fatalf("FetchRunnable of a modified tree: %v, %v", trees, err)
	}

	// A plugin whose manifest has a build, fetched and not built.
	d2 := deployment(t, plugOf("c", "./c", ""))
	localPlugin(t, d2.BaseDir, "c", `["sh", "build.sh"]`)
	if trees, err := newStore(t).FetchRunnable(ctx, d2, &spec.Lock{}, FetchOptions{}); err == nil || trees != nil || !strings.Contains(err.Error(), "not built") {
		t.Fatalf("FetchRunnable of an unbuilt tree: %v, %v", trees, err)
	}
}
