package runner

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/layout"
)

// filesHolding lists the regular files under root whose content holds s.
func filesHolding(t *testing.T, root, s string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, rerr := os.ReadFile(p); rerr == nil && bytes.Contains(b, []byte(s)) {
				out = append(out, p)
			}
		}
		return nil
	})
	return out
}

// runThenRemove starts a sleep instance on a new test runner, waits until
// it runs, and removes it.
func runThenRemove(t *testing.T, opts Options) (*Runner, *statuses, instance.Spec) {
	t.Helper()
	r, sts := newTestRunner(t, opts)
	s := fakeSpec("gone", "default", "sleep")
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	sts.await(t, s.ID, "running", running)
	if err := r.Remove(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	return r, sts, s
}

// TestRemoveTakesTheFolderAtOnceAndDeletesItAfterThePause: Remove returns
// with the instance's folder gone from instances/ (its config.json and
// secret with it), held in removed/ until the housekeeper deletes it once
// the starts pause; the observers are told "stopped", and an instance of
// the same id started at once gets a folder of its own, which the late
// deletion leaves alone.
func TestRemoveTakesTheFolderAtOnceAndDeletesItAfterThePause(t *testing.T) {
	r, sts, s := runThenRemove(t, Options{})
	if _, err := os.Lstat(InstanceDir(r.opts.StateDir, s.ID)); !os.IsNotExist(err) {
		t.Errorf("the instance's folder after Remove: %v, want it gone", err)
	}
	if got := filesHolding(t, layout.Instances(r.opts.StateDir), "s3cret"); len(got) != 0 {
		t.Errorf("the secret is still under instances/ after Remove: %v", got)
	}
	sts.await(t, s.ID, "stopped told to the observers", func(st instance.Status) bool { return st.State == instance.StateStopped })
	held, _ := os.ReadDir(layout.Removed(r.opts.StateDir))
	if len(held) != 1 {
		t.Fatalf("removed/ holds %d entries, want the instance's folder", len(held))
	}
	if fi, err := os.Stat(layout.Removed(r.opts.StateDir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("removed/: %v, %v; want a folder of mode 0700", fi, err)
	}
	// Its instance.json was not rewritten for a folder about to go.
	f, err := ReadInstanceFile(filepath.Join(layout.Removed(r.opts.StateDir), held[0].Name(), "instance.json"))
	if err != nil || f.State != string(instance.StateRunning) {
		t.Errorf("the removed folder's instance.json: %+v, %v; want its last state, running", f, err)
	}

	again := fakeSpec("gone", "default", "sleep")
	if err := r.Start(t.Context(), again); err != nil {
		t.Fatal(err)
	}
	sts.await(t, s.ID, "running again", running)
	eventually(t, "removed/ emptied after the pause", func() bool {
		ents, err := os.ReadDir(layout.Removed(r.opts.StateDir))
		return err == nil && len(ents) == 0
	})
	if _, err := os.Stat(filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "config.json")); err != nil {
		t.Errorf("the new instance's config.json after the old folder's deletion: %v", err)
	}
}

// TestRemoveIntoAForeignRemovedFolder: when removed/ is not a folder of
// the state directory's own (a symlink elsewhere, a file), Remove deletes
// the instance's folder itself and moves nothing through it.
func TestRemoveIntoAForeignRemovedFolder(t *testing.T) {
	for _, kind := range []string{"symlink", "file"} {
		t.Run(kind, func(t *testing.T) {
			state, elsewhere := t.TempDir(), t.TempDir()
			trash := layout.Removed(state)
			var err error
			if kind == "symlink" {
				err = os.Symlink(elsewhere, trash)
			} else {
				err = os.WriteFile(trash, nil, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			_, _, s := runThenRemove(t, Options{StateDir: state})
			if _, err := os.Lstat(InstanceDir(state, s.ID)); !os.IsNotExist(err) {
				t.Errorf("the instance's folder after Remove: %v, want it gone", err)
			}
			if got := filesHolding(t, elsewhere, "s3cret"); len(got) != 0 {
				t.Errorf("moved through the foreign removed/: %v", got)
			}
			if got := filesHolding(t, state, "s3cret"); len(got) != 0 {
				t.Errorf("left in the state directory: %v", got)
			}
		})
	}
}

// TestNewDeletesWhatACrashLeftInRemoved: folders a killed daemon left in
// removed/ (its housekeeper never ran) are deleted by the next runner.
func TestNewDeletesWhatACrashLeftInRemoved(t *testing.T) {
	state := t.TempDir()
	left := filepath.Join(layout.Removed(state), "gone.default.x1")
	if err := os.MkdirAll(left, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(left, "config.json"), []byte(`{"secret":"s3cret"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	newTestRunner(t, Options{StateDir: state})
	eventually(t, "removed/ deleted by the next runner", func() bool {
		_, err := os.Lstat(layout.Removed(state))
		return os.IsNotExist(err)
	})
}
