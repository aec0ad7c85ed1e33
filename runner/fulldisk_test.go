package runner

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/plugs-dev/plugs/instance"
	"golang.org/x/sys/unix"
)

// TestInstanceFileRetriedAfterFullDisk: the state dir fills up while an
// instance runs; its process is killed and restarted (instance.json cannot
// be written: it still names the dead pid as running). Once space is free
// again, instance.json says the truth — the new pid — without another
// change of the instance.
func TestInstanceFileRetriedAfterFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts a small tmpfs: needs root")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	r, sts := newTestRunner(t, Options{StateDir: filepath.Join(mnt, "state")})
	s := fakeSpec("full", "default", "sleep")
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	first := sts.await(t, s.ID, "running", running)
	name := filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "instance.json")
	eventually(t, "instance.json naming the first pid", func() bool {
		f, err := ReadInstanceFile(name)
		return err == nil && f.PID == first.PID
	})

	fill := filepath.Join(mnt, "fill")
	f, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{1}, 64<<10)
	for range 64 { // 4 MiB at most: past the 1 MiB the mount holds
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(mnt, "probe"), chunk, 0o600); err == nil {
		t.Fatal("the tmpfs is not full")
	}
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := sts.await(t, s.ID, "running again on a new pid", func(st instance.Status) bool { return running(st) && st.PID != first.PID })
	if f, err := ReadInstanceFile(name); err == nil && f.PID == second.PID {
		t.Fatal("precondition: instance.json was written on the full disk")
	}
	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	eventually(t, "instance.json naming the running pid once space is free", func() bool {
		f, err := ReadInstanceFile(name)
		return err == nil && f.PID == second.PID && f.State == "running"
	})
}
