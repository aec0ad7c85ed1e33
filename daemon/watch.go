package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// watchFiles watches the folder of the given files (editors save by
// renaming a temp file over the original, which a watch on the file itself
// would lose) and calls fire on every change to any of them; fire must not
// block. Debouncing is the caller's (reconcile.Loop debounces its triggers):
// a second debounce here would only add its delay to every save. It returns
// when ctx ends; the watcher is created before it returns an error so the
// caller knows at once.
func watchFiles(ctx context.Context, files []string, logger *slog.Logger, fire func()) (wait func(), err error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	names := map[string]bool{}
	dirs := map[string]bool{}
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("watch %s: %w", f, err)
		}
		names[abs] = true
		dirs[filepath.Dir(abs)] = true
	}
	for d := range dirs {
		if err := w.Add(d); err != nil {
			w.Close()
			return nil, fmt.Errorf("watch %s: %w", d, err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if names[filepath.Clean(ev.Name)] && ev.Op != fsnotify.Chmod {
					fire()
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				logger.Warn("file watch error", "err", err)
			}
		}
	}()
	return func() { <-done }, nil
}
