package runner

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Default output.log rotation: 10 MiB, three backups (output.log.1 .. .3).
const (
	DefaultLogMaxSize = 10 << 20
	DefaultLogBackups = 3
)

// maxLogLine bounds how far past maxSize a file grows to end on a line
// boundary (and at most maxSize itself, for tiny test sizes).
const maxLogLine = 64 << 10

// dropWarnInterval is the least time between two warnings about output
// that could not be written (a full disk).
const dropWarnInterval = time.Minute

// rotatingFile is an append-only file rotated by size, on line boundaries:
// a write that would take it past maxSize writes through its last newline
// that fits, and the next line starts the new file; a line that began
// before maxSize is finished first, up to maxLogLine past it, beyond which
// a longer line is cut. On rotation name.N-1 becomes name.N (the oldest is
// dropped), name becomes name.1, and a new name is opened. The disk used is
// therefore at most (maxSize+maxLogLine)*(backups+1). It holds no
// goroutine. The file is opened by the first Write, so that making one
// costs no file creation (Touch creates it empty).
type rotatingFile struct {
	name    string
	maxSize int64
	maxLine int64
	backups int
	// dropped, when set, is told that output could not be written (a full
	// disk), at most once per dropWarnInterval of now, with the bytes lost
	// since the last time.
	dropped func(err error, bytes int64)
	// planted, when set, is told of a file that was not a regular one
	// (a symlink, a FIFO: openfile.go) found at name and replaced.
	planted func(err error)
	now     func() time.Time

	mu       sync.Mutex
	f        *os.File
	size     int64
	midLine  bool // the file does not end with a newline
	closed   bool
	touched  bool // Touch made sure the file exists
	lost     int64
	lastWarn time.Time
}

func newRotatingFile(name string, maxSize int64, backups int) *rotatingFile {
	return &rotatingFile{name: name, maxSize: maxSize, maxLine: min(maxLogLine, maxSize), backups: backups, now: time.Now}
}

// Touch creates the file, empty, unless it exists or is open, and keeps
// no descriptor: an instance that never prints has a log (plugs logs
// finds it) and holds no file open, for every fork copies and every exec
// closes each descriptor the daemon holds. The first write opens it.
// After the first call it does nothing.
func (r *rotatingFile) Touch() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.f != nil || r.touched {
		return nil
	}
	f, err := r.openFile()
	if err != nil {
		return err
	}
	r.touched = true
	return f.Close()
}

// openFile opens (creates) the log by the rule of openfile.go: it is in
// the instance's folder, where the instance's user may have put a symlink
// (root's output would be appended to the file it names) or a FIFO (a
// write would block the output pump once its buffer is full). Either is
// replaced by a new file, and told to planted.
func (r *rotatingFile) openFile() (*os.File, error) {
	f, planted, err := createRegular(r.name, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	if planted != nil && r.planted != nil {
		r.planted(fmt.Errorf("open log: %w", planted))
	}
	return f, nil
}

func (r *rotatingFile) ensureOpen() error {
	switch {
	case r.closed:
		return os.ErrClosed
	case r.f != nil:
		return nil
	}
	return r.open()
}

func (r *rotatingFile) open() error {
	f, err := r.openFile()
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	r.f, r.size, r.midLine = f, fi.Size(), false
	if r.size > 0 {
		last := []byte{'\n'}
		_, _ = f.ReadAt(last, r.size-1)
		r.midLine = last[0] != '\n'
	}
	return nil
}

// Write appends p, rotating on line boundaries (see rotatingFile). An
// error is also reported to dropped (rate-limited).
func (r *rotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.write(p)
	if err != nil && r.dropped != nil && !r.closed {
		r.lost += int64(len(p) - n)
		if now := r.now(); r.lastWarn.IsZero() || now.Sub(r.lastWarn) >= dropWarnInterval {
			r.dropped(err, r.lost)
			r.lastWarn, r.lost = now, 0
		}
	}
	return n, err
}

func (r *rotatingFile) write(p []byte) (int, error) {
	if err := r.ensureOpen(); err != nil {
		return 0, err
	}
	written := 0
	for len(p) > 0 {
		room := r.maxSize - r.size
		var chunk []byte
		switch {
		case int64(len(p)) <= room:
			chunk = p
		case room > 0 && bytes.LastIndexByte(p[:room], '\n') >= 0:
			chunk = p[:bytes.LastIndexByte(p[:room], '\n')+1]
		case r.size > 0 && !r.midLine:
			// The file ends on a line boundary: the line starts the next.
			if err := r.rotate(); err != nil {
				return written, err
			}
			continue
		default:
			// A line in progress: finish it, up to maxLine past maxSize.
			hard := r.maxSize + r.maxLine - r.size
			if hard <= 0 {
				if err := r.rotate(); err != nil { // longer than maxLine: cut
					return written, err
				}
				continue
			}
			chunk = p[:min(int64(len(p)), hard)]
			if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
				chunk = chunk[:i+1]
			}
		}
		n, err := r.f.Write(chunk)
		written += n
		r.size += int64(n)
		if n > 0 {
			r.midLine = chunk[n-1] != '\n'
		}
		if err != nil {
			return written, fmt.Errorf("write log: %w", err)
		}
		p = p[n:]
	}
	return written, nil
}

func (r *rotatingFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	r.f = nil
	if r.backups <= 0 {
		if err := os.Remove(r.name); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("rotate log: %w", err)
		}
		return r.open()
	}
	for i := r.backups - 1; i >= 1; i-- {
		err := os.Rename(backupName(r.name, i), backupName(r.name, i+1))
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("rotate log: %w", err)
		}
	}
	if err := os.Rename(r.name, backupName(r.name, 1)); err != nil {
		return fmt.Errorf("rotate log: %w", err)
	}
	return r.open()
}

func backupName(name string, i int) string {
	return filepath.Join(filepath.Dir(name), fmt.Sprintf("%s.%d", filepath.Base(name), i))
}

// Close closes the current file; later writes fail with os.ErrClosed.
func (r *rotatingFile) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
