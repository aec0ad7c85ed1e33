package daemon

import (
	"context"
	"os"
	"path/filepath"
	"slices"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/layout"
)

// pruneInstanceDirs removes the folders under <state>/instances that no
// desired instance (service or task) and no instance the runner knows
// owns: those of plugs or instances removed from plugs.hcl while the
// daemon was down, whose config.json holds their secrets. A removal from
// a running daemon is a Delete in the plan (runner.Remove); this covers
// the rest. It runs once per daemon, after the first reconcile that loaded
// and applied a configuration, so that a configuration that does not load
// (or an empty one that is refused) removes nothing. The task folders are
// pruned after every such reconcile (pruneTaskDirs). Called with mu held.
func (d *daemon) pruneInstanceDirs(ctx context.Context, desired []instance.Spec) {
	d.pruneTaskDirs(desired)
	if d.pruned {
		return
	}
	d.pruned = true
	keep := map[instance.ID]bool{}
	for _, s := range desired {
		keep[s.ID] = true
	}
	for _, st := range d.runner.Observe() {
		keep[st.ID] = true
	}
	dirs, _ := filepath.Glob(filepath.Join(layout.Instances(d.opts.StateDir), "*", "*"))
	for _, dir := range dirs {
		if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
			continue
		}
		id := instance.ID{Plug: filepath.Base(filepath.Dir(dir)), Instance: filepath.Base(dir)}
		if keep[id] {
			continue
		}
		if err := d.runner.Remove(ctx, id); err != nil {
			d.log.Warn("remove the folder of an instance no longer declared", "plug", id.Plug, "instance", id.Instance, "err", err)
			continue
		}
		d.log.Info("removed the folder of an instance no longer declared", "plug", id.Plug, "instance", id.Instance)
	}
}

// pruneTaskDirs removes the folders under <state>/tasks of plugs that are
// no task of desired: a task plug removed from plugs.hcl, while the daemon
// ran (no plan Delete removes a task's folder) or was down. They hold its
// run history (outputs included) and schedule slots. It is called after
// every reconcile that loaded and applied a configuration, once the task
// manager no longer has the plug, so that a configuration that does not
// load removes nothing. A folder whose input/ still holds a file has a run
// under way (its PLUGS_INPUT): it is left for a later reconcile. Nothing
// is followed through a symlink: a tasks folder or a plug's folder that is
// one is left alone (os.RemoveAll removes links, not what they name).
// Called with mu held.
func (d *daemon) pruneTaskDirs(desired []instance.Spec) {
	root := layout.Tasks(d.opts.StateDir)
	if fi, err := os.Lstat(root); err != nil || !fi.IsDir() {
		return // none, or a symlink out of the state dir
	}
	keep := map[string]bool{}
	for _, s := range desired {
		if s.Task != nil {
			keep[s.ID.Plug] = true
		}
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		d.log.Warn("read the task folders", "err", err)
		return
	}
	for _, e := range entries {
		plug := e.Name()
		if keep[plug] || !e.IsDir() || e.Type()&os.ModeSymlink != 0 {
			continue
		}
		dir := layout.TaskDir(d.opts.StateDir, plug)
		if inputs, _ := os.ReadDir(layout.TaskInput(d.opts.StateDir, plug)); slices.ContainsFunc(inputs, func(e os.DirEntry) bool { return !e.IsDir() }) {
			d.log.Debug("task folder of a plug no longer declared kept: a run is under way", "plug", plug)
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			d.log.Warn("remove the task folder of a plug no longer declared", "plug", plug, "err", err)
			continue
		}
		d.log.Info("removed the task folder of a plug no longer declared", "plug", plug)
	}
}
