package fetch

import (
	"bytes"
	"strings"
	"testing"
)

// TestFetchProgressOnlyForWork: the first fetch of two local plugs shows a
// progress line for each; a fetch of the same lock again (every tree in
// the store: what each daemon start and reload does) prints nothing.
func TestFetchProgressOnlyForWork(t *testing.T) {
	d := deployment(t, plugOf("a", "./a", ""), plugOf("b", "./b", ""))
	localPlugin(t, d.BaseDir, "a", "")
	localPlugin(t, d.BaseDir, "b", "")
	var progress bytes.Buffer
	s := Open(t.TempDir(), Options{Progress: &progress})
	l := mustLock(t, s, d, nil)
	progress.Reset()
	fresh := Open(t.TempDir(), Options{Progress: &progress})
	mustFetch(t, fresh, d, l, true)
	if got := strings.Count(progress.String(), "fetch ["); got != 2 {
		t.Errorf("first fetch: %d progress lines, want 2:\n%s", got, progress.String())
	}
	progress.Reset()
	mustFetch(t, fresh, d, l, true)
	if progress.Len() != 0 {
		t.Errorf("fetch of trees already in the store printed:\n%s", progress.String())
	}
}
