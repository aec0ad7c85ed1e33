package daemon

import (
	"context"
	"os"
	"path/filepath"

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
// (or an empty one that is refused) removes nothing. Called with mu held.
func (d *daemon) pruneInstanceDirs(ctx context.Context, desired []instance.Spec) {
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
