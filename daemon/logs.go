package daemon

import (
	"context"
	"io"

	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/plugs-dev/plugs/runner"
)

// LogPath is where the runner keeps an instance's output.
func LogPath(stateDir, plug, instance string) string {
	return layout.OutputLog(stateDir, plug, instance)
}

// TailLog writes the last n lines of the log at path to w (all of it when n
// < 0), the rotated backups included, then, with follow, what is appended
// until ctx ends. The runner owns the log's format and rotation, and so its
// reading: see runner.TailLog.
func TailLog(ctx context.Context, w io.Writer, path string, n int, follow bool) error {
	return runner.TailLog(ctx, w, path, n, follow)
}
