package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/plugs-dev/plugs/internal/atomicfile"
	"github.com/plugs-dev/plugs/internal/layout"
)

func isRemoteArchive(source string) bool {
	return strings.HasPrefix(source, "https://") || strings.HasPrefix(source, "http://")
}

// archiveCacheDir holds downloaded archives, each named by its sha256.
func (s *Store) archiveCacheDir() string { return layout.Cache(s.dir, "archives") }

// download returns the cached copy of a remote archive and its sha256. With
// a pinned sha256 (the lock's) the cache is tried first, and a download
// whose content differs is refused; without one (resolving) it is always
// downloaded. A download shows a progress line, goes to a temporary file
// and is renamed into the cache only once complete and checked.
func (s *Store) download(ctx context.Context, plug string, src *source, pin *pinned) (string, string, error) {
	ext := archiveExt(src.location)
	if err := os.MkdirAll(s.archiveCacheDir(), 0o755); err != nil {
		return "", "", err
	}
	defer s.lockKey("archive:" + src.location)()
	if pin != nil && pin.sha256 != "" {
		cached := filepath.Join(s.archiveCacheDir(), pin.sha256+ext)
		if sum, err := fileSHA256(cached); err == nil && sum == pin.sha256 {
			return cached, sum, nil
		}
	}
	if s.opts.Offline {
		return "", "", fmt.Errorf("%s: offline and not in the cache", src.location)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.location, nil)
	if err != nil {
		return "", "", inputErrorf("source %s: %v", src.location, err)
	}
	client := s.opts.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("download %s: %w", src.location, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("download %s: %s", src.location, resp.Status)
		if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone {
			return "", "", &inputError{err}
		}
		return "", "", err
	}
	// Its name is its sha256, known once it is all here: streamed into an
	// atomicfile renamed at the end.
	f, err := atomicfile.Create(s.archiveCacheDir(), "download", 0o600, atomicfile.Fast)
	if err != nil {
		return "", "", err
	}
	defer f.Abort() // no-op once committed
	lim := s.opts.Limits.withDefaults()
	h := sha256.New()
	bar := s.downloadProgress(plug, src.location, resp.ContentLength)
	n, err := io.Copy(io.MultiWriter(f, h, bar), io.LimitReader(resp.Body, lim.MaxBytes+1))
	bar.finish(err == nil)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return "", "", ctxErr
		}
		return "", "", fmt.Errorf("download %s: %w", src.location, err)
	}
	if n > lim.MaxBytes {
		return "", "", inputErrorf("download %s: larger than %d bytes", src.location, lim.MaxBytes)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if pin != nil && pin.sha256 != "" && sum != pin.sha256 {
		return "", "", inputErrorf("the archive at %s changed: its sha256 is %s, plugs.lock.hcl pins %s; if the change is expected, run plugs lock -update %s",
			src.location, sum, pin.sha256, plug)
	}
	final := filepath.Join(s.archiveCacheDir(), sum+ext)
	if err := f.Commit(final); err != nil {
		return "", "", err
	}
	s.log.Info("downloaded", "plug", plug, "url", src.location, "bytes", n, "sha256", sum)
	return final, sum, nil
}

// downloadBar writes one progress line per download: redrawn in place on a
// terminal (at most every 200 ms), a start and an end line otherwise.
type downloadBar struct {
	mu          sync.Mutex
	p           *progress
	what        string
	total, done int64
	last        time.Time
}

func (s *Store) downloadProgress(plug, url string, total int64) *downloadBar {
	b := &downloadBar{p: s.progress("download", 1), what: plug + " " + url, total: total}
	if b.p.w != nil && !b.p.tty {
		fmt.Fprintf(b.p.w, "download %s (%s)\n", b.what, sizeOf(total))
	}
	return b
}

func (b *downloadBar) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += int64(len(p))
	if b.p.w != nil && b.p.tty && time.Since(b.last) > 200*time.Millisecond {
		b.last = time.Now()
		fmt.Fprintf(b.p.w, "\r\x1b[Kdownload %s: %s of %s", b.what, sizeOf(b.done), sizeOf(b.total))
	}
	return len(p), nil
}

func (b *downloadBar) finish(ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p.w == nil {
		return
	}
	state := "done"
	if !ok {
		state = "failed"
	}
	if b.p.tty {
		fmt.Fprintf(b.p.w, "\r\x1b[Kdownload %s: %s %s\n", b.what, sizeOf(b.done), state)
		return
	}
	fmt.Fprintf(b.p.w, "download %s: %s %s\n", b.what, sizeOf(b.done), state)
}

func sizeOf(n int64) string {
	switch {
	case n < 0:
		return "size unknown"
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
