package sandbox

import (
	"os"
	"path/filepath"
	"testing"
)

// TestUserPathDropsPrivateFolders: a daemon whose PATH starts in a private
// home (pyenv's shims under /root) must not hand a plugin user a command
// it cannot exec; the lookup falls through to a folder the user can search.
func TestUserPathDropsPrivateFolders(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to own a private folder another uid cannot search")
	}
	root := t.TempDir()
	// t.TempDir's folders are private: open them up to the path walk.
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	private := filepath.Join(root, "home", "shims")
	public := filepath.Join(root, "usr", "bin")
	for _, d := range []string{private, public} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "python3"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "home"), 0o700); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	path := private + ":" + public
	got := userPath(path, nobody, nobody, nil)
	if got != public {
		t.Errorf("userPath(%q) for uid %d = %q, want %q", path, nobody, got, public)
	}
	if got := userPath(path, 0, 0, nil); got != path {
		t.Errorf("userPath for root = %q, want it unchanged", got)
	}
	file, ok := lookUserPath("python3", got, nobody, nobody, nil)
	if !ok || file != filepath.Join(public, "python3") {
		t.Errorf("lookUserPath = %q, %v; want %s", file, ok, filepath.Join(public, "python3"))
	}
	if err := os.Chmod(filepath.Join(public, "python3"), 0o744); err != nil {
		t.Fatal(err)
	}
	if file, ok := lookUserPath("python3", got, nobody, nobody, nil); ok {
		t.Errorf("lookUserPath found %s, which uid %d may not execute", file, nobody)
	}
	// The group class decides for a member of the file's group.
	if !permits(filepath.Join(public, "python3"), nobody, 0, nil, 0o4) {
		t.Error("a member of the file's group (gid 0) may read a 0744 file")
	}
}
