package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/spec"
	"github.com/plugs-dev/plugs/workspace"
)

// fetchSession is what lock, fetch, build and bundle share: the workspace
// (deployment, its lock: nil when there is none) and the store.
type fetchSession struct {
	g        *globals
	w        *workspace.Workspace
	d        *spec.Deployment
	lock     *spec.Lock
	lockFile string
	lockOld  []byte // the lock file's bytes as read, nil when missing
	store    *fetch.Store
}

func openFetchSession(g *globals) (*fetchSession, error) {
	vars, err := g.vars()
	if err != nil {
		return nil, inputError(err)
	}
	w, diags := workspace.Open(workspace.Options{File: g.file(), StateDir: g.stateDir(), Vars: vars})
	writeDiags(g.stderr, w.Files(), workspace.ForView(diags))
	if workspace.EnvFailure(diags) {
		return nil, silent(exitEnv)
	}
	if diags.HasErrors() {
		return nil, silent(exitInput)
	}
	s := &fetchSession{g: g, w: w, d: w.Deployment, lock: w.Lock, lockFile: w.LockFile, lockOld: w.LockBytes}
	opts := fetch.Options{Logger: slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if !g.quiet() {
		opts.Progress = g.stderr
	}
	s.store = w.Store(opts)
	return s, nil
}

// lockOrEmpty returns the lock to update in place.
func (s *fetchSession) lockOrEmpty() *spec.Lock {
	s.lock = s.w.LockOrEmpty()
	return s.lock
}

// saveLock writes l when its bytes differ from the file's.
func (s *fetchSession) saveLock(l *spec.Lock) (bool, error) {
	if bytes.Equal(fetch.FormatLock(l), s.lockOld) {
		return false, nil
	}
	if err := fetch.WriteLock(s.lockFile, l); err != nil {
		return false, envError(fmt.Errorf("write lock: %w", err))
	}
	return true, nil
}

// failure renders a lock, fetch, build or bundle error as diagnostics,
// the way plugs validate shows them (file:line, the source line, the
// detail): the manifests' diagnostics it carries, and each plug's input
// error at its plug block; then, flat, the failures of the environment. The
// exit code is validate's (1) unless one of those remains (2).
func (s *fetchSession) failure(err error) error {
	diags, others := workspace.FetchDiagnostics(s.d, err)
	if len(diags) == 0 {
		return fetchError(err)
	}
	writeDiags(s.g.stderr, s.w.Files(), workspace.ForView(diags))
	switch {
	case workspace.EnvFailure(diags):
		return silent(exitEnv)
	case len(others) == 0:
		return silent(exitInput)
	}
	return fetchError(errors.Join(others...))
}

// fetchError maps a fetch error to its exit code.
func fetchError(err error) error {
	if fetch.IsInputError(err) {
		return inputError(err)
	}
	return envError(err)
}

// signalContext is canceled by SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
