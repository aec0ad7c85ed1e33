package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Default output.log rotation: 10 MiB, three backups (output.log.1 .. .3).
const (
	DefaultLogMaxSize = 10 << 20
	DefaultLogBackups = 3
)

// rotatingFile is an append-only file rotated by size: when a write would
// take it past maxSize, name.N-1 becomes name.N (the oldest is dropped),
// name becomes name.1, and a new name is opened. The disk used is therefore
// at most maxSize*(backups+1). It holds no goroutine. The file is opened on
// first use (Open or Write), so that making one costs no file creation.
type rotatingFile struct {
	name    string
	maxSize int64
	backups int

	mu     sync.Mutex
	f      *os.File
	size   int64
	closed bool
}

func newRotatingFile(name string, maxSize int64, backups int) *rotatingFile {
	return &rotatingFile{name: name, maxSize: maxSize, backups: backups}
}

// Open creates or opens the file for appending, unless it is open already.
func (r *rotatingFile) Open() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ensureOpen()
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
	f, err := os.OpenFile(r.name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log: %w", err)
	}
	r.f, r.size = f, fi.Size()
	return nil
}

// Write appends p, splitting it across rotations so no file exceeds maxSize.
func (r *rotatingFile) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.ensureOpen(); err != nil {
		return 0, err
	}
	written := 0
	for len(p) > 0 {
		if r.size >= r.maxSize {
			if err := r.rotate(); err != nil {
				return written, err
			}
		}
		chunk := p[:min(int64(len(p)), r.maxSize-r.size)]
		n, err := r.f.Write(chunk)
		written += n
		r.size += int64(n)
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
