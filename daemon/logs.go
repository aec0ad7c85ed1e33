package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/plugs-dev/plugs/internal/layout"
)

// LogPath is where the runner keeps an instance's output.
func LogPath(stateDir, plug, instance string) string {
	return layout.OutputLog(stateDir, plug, instance)
}

// followPoll is how often a followed log is checked for growth and rotation.
const followPoll = 200 * time.Millisecond

// TailLog writes the last n lines of the log at path to w (all of it when n
// < 0), then, with follow, keeps writing what is appended until ctx ends,
// reopening the file when it is rotated (replaced or truncated), as tail -F does.
func TailLog(ctx context.Context, w io.Writer, path string, n int, follow bool) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && follow {
			f = nil // wait for it to appear
		} else {
			return fmt.Errorf("read log: %w", err)
		}
	}
	if f != nil {
		if err := writeTail(w, f, n); err != nil {
			f.Close()
			return err
		}
	}
	if !follow {
		if f != nil {
			f.Close()
		}
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
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	buf := make([]byte, 32*1024)
	for {
		if f != nil {
			for {
				k, err := f.Read(buf)
				if k > 0 {
					if _, werr := w.Write(buf[:k]); werr != nil {
						return werr
					}
				}
				if err != nil {
					break
				}
			}
			flush()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		// Rotated: the path names another file now, or ours shrank.
		cur, err := os.Stat(path)
		if err != nil {
			continue
		}
		if f == nil {
			if f, err = os.Open(path); err != nil {
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
			_, _ = io.CopyBuffer(w, f, buf)
			f.Close()
			if f, err = os.Open(path); err != nil {
				f = nil
			}
		}
	}
}

// writeTail copies the last n lines of f to w and leaves f at its end.
func writeTail(w io.Writer, f *os.File, n int) error {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	start := int64(0)
	if n >= 0 {
		start = tailOffset(f, size, n)
	}
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	return nil
}

// tailOffset finds the offset of the n-th line from the end, reading
// backwards in blocks so that a large log is never read whole.
func tailOffset(f *os.File, size int64, n int) int64 {
	if n == 0 {
		return size
	}
	const block = 8 * 1024
	buf := make([]byte, block)
	end := size
	// A final newline ends the last line; it does not start a new one.
	count := 0
	for end > 0 {
		start := max(end-block, 0)
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil && !errors.Is(err, io.EOF) {
			return 0
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' {
				continue
			}
			if start+int64(i) == size-1 {
				continue
			}
			count++
			if count == n {
				return start + int64(i) + 1
			}
		}
		end = start
	}
	return 0
}
