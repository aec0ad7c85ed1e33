package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// Reading output.log: the runner owns its format and rotation (logfile.go),
// so it owns reading it back too. The log and its backups are in the
// instance's folder, which the sandbox gives to the instance's user: they
// are opened by the rule of openfile.go (openLog), so that a symlink
// planted as output.log.2 does not make plugs logs, run by root, show the
// file it names, and a FIFO does not hang it.

// openLog opens a log file for reading (openRegular, without owned: plugs
// logs may run as another user than the daemon).
func openLog(name string) (*os.File, error) {
	return openRegular(name, os.O_RDONLY, 0, false)
}

// TailLog writes the last n lines of the instance log at path to w (all of
// it when n < 0), reading the rotated backups (path.1, path.2, ...) when
// path alone holds fewer lines; then, with follow, it keeps writing what is
// appended until ctx ends, woken by fsnotify events on the log's folder
// (never a polling tick), and moves on to the new file when the log is
// rotated, after draining the old one, as tail -F does.
func TailLog(ctx context.Context, w io.Writer, path string, n int, follow bool) error {
	var watcher *fsnotify.Watcher
	if follow {
		// Watch before reading, so that no write between the read and
		// the watch goes unnoticed.
		var err error
		if watcher, err = fsnotify.NewWatcher(); err != nil {
			return fmt.Errorf("follow log: %w", err)
		}
		defer watcher.Close()
		if err := watcher.Add(filepath.Dir(path)); err != nil {
			return fmt.Errorf("follow log: %w", err)
		}
	}
	f, err := openLog(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && follow:
		f = nil // wait for it to appear
	case err != nil:
		return fmt.Errorf("read log: %w", err)
	}
	if err := writeTailAcross(w, path, f, n); err != nil {
		if f != nil {
			f.Close()
		}
		return err
	}
	if !follow {
		f.Close()
		return nil
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	flush := func() {
		if fl, ok := w.(interface{ Flush() }); ok {
			fl.Flush()
		}
	}
	flush()
	buf := make([]byte, 32<<10)
	for {
		if f != nil {
			if _, err := io.CopyBuffer(w, f, buf); err != nil {
				return err
			}
			flush()
		}
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-watcher.Errors:
			if !ok {
				return nil
			}
			return fmt.Errorf("follow log: %w", err)
		case ev, ok := <-watcher.Events:
			if !ok {
				return nil
			}
			if filepath.Clean(ev.Name) != filepath.Clean(path) {
				continue
			}
		}
		// Rotated: the path names another file now, or ours shrank.
		cur, err := os.Lstat(path)
		if err != nil {
			continue // renamed away; the new file's Create event follows
		}
		if f == nil {
			if f, err = openLog(path); err != nil {
				f = nil
			}
			continue
		}
		old, err := f.Stat()
		if err != nil {
			continue
		}
		pos, _ := f.Seek(0, io.SeekCurrent)
		if !os.SameFile(old, cur) || cur.Size() < pos {
			// Drain what was written to the old file before the swap.
			if _, err := io.CopyBuffer(w, f, buf); err != nil {
				return err
			}
			f.Close()
			if f, err = openLog(path); err != nil {
				f = nil
			}
		}
	}
}

// writeTailAcross writes the last n lines of the log (n < 0: all of it),
// taking lines from the backups, oldest first, when cur (the open current
// file, or nil) has fewer, and leaves cur at its end.
func writeTailAcross(w io.Writer, path string, cur *os.File, n int) error {
	// The files newest first: the current one, then path.1, path.2, ...
	files := []*os.File{}
	if cur != nil {
		files = append(files, cur)
	}
	defer func() {
		for _, f := range files {
			if f != cur {
				f.Close()
			}
		}
	}()
	// The backups end at the first missing one, or one that is not a
	// regular file (openLog): what is older is not shown.
	for i := 1; ; i++ {
		b, err := openLog(backupName(path, i))
		if err != nil {
			break
		}
		files = append(files, b)
	}
	// From the newest file back, find where the last n lines begin.
	type part struct {
		f     *os.File
		start int64
	}
	var parts []part
	need := n
	for _, f := range files {
		size, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
		if n < 0 {
			parts = append(parts, part{f, 0})
			continue
		}
		if need <= 0 {
			break
		}
		start, found := tailOffsetN(f, size, need)
		parts = append(parts, part{f, start})
		need -= found
	}
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		if _, err := p.f.Seek(p.start, io.SeekStart); err != nil {
			return fmt.Errorf("read log: %w", err)
		}
		if _, err := io.Copy(w, p.f); err != nil {
			return fmt.Errorf("read log: %w", err)
		}
	}
	if cur != nil {
		if _, err := cur.Seek(0, io.SeekEnd); err != nil {
			return fmt.Errorf("read log: %w", err)
		}
	}
	return nil
}

// tailOffsetN finds the offset of the n-th line from the end of f, reading
// backwards in blocks so that a large log is never read whole, and how many
// lines that offset leaves (n, or fewer when f starts before).
func tailOffsetN(f *os.File, size int64, n int) (int64, int) {
	if n == 0 || size == 0 {
		return size, 0
	}
	const block = 8 << 10
	buf := make([]byte, block)
	end := size
	count := 0
	for end > 0 {
		start := max(end-block, 0)
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, count
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			// A final newline ends the last line; it does not start one.
			if chunk[i] != '\n' || start+int64(i) == size-1 {
				continue
			}
			count++
			if count == n {
				return start + int64(i) + 1, n
			}
		}
		end = start
	}
	return 0, count + 1 // the first line has no newline before it
}
