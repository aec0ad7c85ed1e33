package fetch

import (
	"errors"
	"fmt"
	"strings"

	redactpkg "github.com/plugs-dev/plugs/internal/redact"
	plugsource "github.com/plugs-dev/plugs/internal/source"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// The source kinds are internal/source's, the one home of what a plug
// source is (spec checks sources with the same rules).
type sourceKind = plugsource.Kind

const (
	kindGit           = plugsource.Git
	kindDir           = plugsource.Dir
	kindArchive       = plugsource.Archive
	kindRemoteArchive = plugsource.RemoteArchive // downloaded into the cache, pinned by its sha256 in the lock
)

// source is a parsed plug source.
type source struct {
	kind sourceKind
	// location is the git remote URL without credentials, an absolute
	// path, or an archive URL.
	location string
	subdir   string
	auth     transport.AuthMethod // from URL userinfo; never printed
}

// parseSource parses a plug source as written in plugs.hcl (see
// internal/source), relative to baseDir: a wrong source is an input error.
func parseSource(raw, baseDir string) (*source, error) {
	ps, err := plugsource.Parse(raw, baseDir)
	if err != nil {
		return nil, &inputError{err}
	}
	s := &source{kind: ps.Kind, location: ps.Location, subdir: ps.Subdir}
	if ps.Kind == kindGit && ps.User != nil && (strings.HasPrefix(ps.Location, "https://") || strings.HasPrefix(ps.Location, "http://")) {
		pw, _ := ps.User.Password()
		s.auth = &githttp.BasicAuth{Username: ps.User.Username(), Password: pw}
	}
	return s, nil
}

// archiveExt is the archive suffix of name, "" when it has none.
func archiveExt(name string) string { return plugsource.ArchiveExt(name) }

func (s *source) String() string {
	if s.subdir != "" {
		return s.location + "//" + s.subdir
	}
	return s.location
}

// redact removes userinfo (user:password@) from every URL in s: credentials
// never appear in a message, a log line or the lock. The rule is
// internal/redact's.
func redact(s string) string { return redactpkg.Text(s) }

// inputError marks an error caused by the deployment or the lock (a tag that
// does not exist, a stale lock, a hash mismatch), as opposed to the
// environment (network, disk).
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

func inputErrorf(format string, args ...any) error {
	return &inputError{fmt.Errorf(format, args...)}
}

// IsInputError reports whether err was caused by the deployment or the lock
// (exit 1) rather than by the environment (exit 2).
func IsInputError(err error) bool {
	var ie *inputError
	return errors.As(err, &ie)
}

// PlugError is the failure of one plug. Its kind is its cause's
// (IsInputError); a view may show it at the plug's block in plugs.hcl.
type PlugError struct {
	Plug string
	Err  error
}

func (e *PlugError) Error() string { return fmt.Sprintf("plug %s: %v", e.Plug, e.Err) }
func (e *PlugError) Unwrap() error { return e.Err }

// plugError names the plug in an error, keeping its kind.
func plugError(plug string, err error) error {
	if err == nil {
		return nil
	}
	return &PlugError{Plug: plug, Err: err}
}
