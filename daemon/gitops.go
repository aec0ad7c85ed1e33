package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/plugs-dev/plugs/internal/atomicfile"
	"github.com/plugs-dev/plugs/internal/redact"
)

// pollRepo checks the config repository's ref and checks out a new commit.
// It returns the commit the checkout is at. The git client and the ref
// resolver are fetch's, the same as plug sources'. Called with mu held.
func (d *daemon) pollRepo(ctx context.Context) (plumbing.Hash, error) {
	head, err := d.repo.Head(ctx)
	if err != nil {
		return d.lastCommit, err
	}
	if d.repo.Current() != head {
		if err := d.repo.Checkout(ctx, head); err != nil {
			return d.lastCommit, err
		}
		d.log.Info("config repo checked out", "commit", head)
	}
	return plumbing.NewHash(head), nil
}

// lastGoodPath keeps the last commit that reconciled, across restarts.
func lastGoodPath(stateDir string) string { return filepath.Join(stateDir, "config-repo.last-good") }

// readLastGood reads the last good commit a previous run recorded.
func readLastGood(stateDir string) string {
	b, err := os.ReadFile(lastGoodPath(stateDir))
	if s := strings.TrimSpace(string(b)); err == nil && plumbing.IsHash(s) {
		return s
	}
	return ""
}

// canFallBack reports whether a failed head should give way to the last
// good commit: only while this run has applied nothing (at start), when
// one is recorded and it is not the head itself. Called with mu held.
func (d *daemon) canFallBack(head string) bool {
	d.smu.Lock()
	applied := d.applied
	d.smu.Unlock()
	return !applied && d.lastGood != "" && d.lastGood != head
}

// checkoutLastGood checks out the last good commit, offline when the
// mirror holds it (it does: it was checked out before).
func (d *daemon) checkoutLastGood(ctx context.Context) error {
	err := d.repo.Checkout(ctx, d.lastGood)
	if err == nil {
		d.log.Info("config repo checked out the last good commit", "commit", d.lastGood)
	}
	return err
}

// saveLastGood records commit as the last that reconciled. Called with mu
// held.
func (d *daemon) saveLastGood(commit string) {
	if commit == d.lastGood {
		return
	}
	d.lastGood = commit
	d.smu.Lock()
	d.lastGoodShown = commit
	d.smu.Unlock()
	if err := atomicfile.Write(lastGoodPath(d.opts.StateDir), []byte(commit+"\n"), 0o644, atomicfile.Durable); err != nil {
		d.log.Warn("record the last good commit", "err", err)
	}
}

// redactURL strips credentials from a URL for logs and status.
func redactURL(raw string) string { return redact.URLString(raw) }
