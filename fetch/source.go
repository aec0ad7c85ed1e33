package fetch

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"

	redactpkg "github.com/plugs-dev/plugs/internal/redact"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

type sourceKind int

const (
	kindGit sourceKind = iota
	kindDir
	kindArchive
	// kindRemoteArchive is an http(s) URL of an archive: downloaded into
	// the cache and pinned by its sha256 in the lock.
	kindRemoteArchive
)

// source is a parsed plug source.
type source struct {
	kind sourceKind
	// location is the git remote URL without credentials, or an absolute path.
	location string
	subdir   string
	auth     transport.AuthMethod // from URL userinfo; never printed
}

// archiveExts are the archive suffixes a local source may have; .fp is a
// vendor's plugin bundle, which is a zip.
var archiveExts = []string{".zip", ".fp", ".tar.gz", ".tgz", ".tar"}

// parseSource parses a plug source as written in plugs.hcl: git::URL[//subdir],
// a local folder or a local archive, relative to baseDir.
func parseSource(raw, baseDir string) (*source, error) {
	if rest, ok := strings.CutPrefix(raw, "git::"); ok {
		return parseGitSource(rest, baseDir)
	}
	if strings.HasPrefix(raw, "https://") || strings.HasPrefix(raw, "http://") {
		return parseRemoteArchive(raw)
	}
	if !isLocalPath(raw) {
		return nil, inputErrorf("source %q: want git::URL[//subdir], a ./folder, a ./file.zip, .fp, .tar.gz or .tgz, or an https:// URL of one", redact(raw))
	}
	p, sub := splitSubdir(raw)
	if !filepath.IsAbs(p) {
		p = filepath.Join(baseDir, p)
	}
	sub, err := cleanSubdir(sub)
	if err != nil {
		return nil, inputErrorf("source %q: %v", raw, err)
	}
	s := &source{kind: kindDir, location: filepath.Clean(p), subdir: sub}
	lower := strings.ToLower(p)
	for _, ext := range archiveExts {
		if strings.HasSuffix(lower, ext) {
			s.kind = kindArchive
		}
	}
	if s.kind == kindDir && sub != "" {
		s.location, s.subdir = filepath.Join(s.location, sub), ""
	}
	return s, nil
}

// parseRemoteArchive parses https://host/path/x.zip[//subdir]. Plain http
// is accepted: the lock pins the archive's sha256, so a changed archive is
// refused whatever carried it.
func parseRemoteArchive(raw string) (*source, error) {
	loc, sub := splitSubdir(raw)
	sub, err := cleanSubdir(sub)
	if err != nil {
		return nil, inputErrorf("source %q: %v", redact(raw), err)
	}
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" {
		return nil, inputErrorf("source %q: invalid URL", redact(loc))
	}
	if archiveExt(u.Path) == "" {
		return nil, inputErrorf("source %q: want git::URL[//subdir] for a git repository; an archive URL must end in .zip, .fp, .tar.gz, .tgz or .tar", redact(loc))
	}
	if u.User != nil {
		return nil, inputErrorf("source %q: credentials in an archive URL are not supported", redact(loc))
	}
	return &source{kind: kindRemoteArchive, location: u.String(), subdir: sub}, nil
}

// archiveExt is the archive suffix of name, "" when it has none.
func archiveExt(name string) string {
	lower := strings.ToLower(name)
	for _, ext := range archiveExts {
		if strings.HasSuffix(lower, ext) {
			return ext
		}
	}
	return ""
}

func isLocalPath(s string) bool {
	return strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || strings.HasPrefix(s, "/") || s == "." || s == ".."
}

func parseGitSource(rest, baseDir string) (*source, error) {
	loc, sub := splitSubdir(rest)
	sub, err := cleanSubdir(sub)
	if err != nil {
		return nil, inputErrorf("source %q: %v", redact(rest), err)
	}
	s := &source{kind: kindGit, subdir: sub}
	switch {
	case strings.Contains(loc, "://"):
		u, err := url.Parse(loc)
		if err != nil {
			return nil, inputErrorf("source %q: invalid URL", redact(loc))
		}
		switch u.Scheme {
		case "http", "https":
			if u.User != nil {
				pw, _ := u.User.Password()
				s.auth = &githttp.BasicAuth{Username: u.User.Username(), Password: pw}
				u.User = nil
			}
		case "ssh":
			if u.User != nil {
				u.User = url.User(u.User.Username()) // a password never travels in a URL
			}
		case "git", "file":
		default:
			return nil, inputErrorf("source %q: unsupported scheme %q (want https, http, ssh, git or file)", redact(loc), u.Scheme)
		}
		s.location = u.String()
	case isLocalPath(loc) || filepath.IsAbs(loc):
		if !filepath.IsAbs(loc) {
			loc = filepath.Join(baseDir, loc)
		}
		s.location = filepath.Clean(loc)
	case strings.Contains(loc, "@") && strings.Contains(loc, ":"): // scp-like user@host:path
		s.location = loc
	default:
		return nil, inputErrorf("source %q: want git::URL or git::./path/to/repo", redact(loc))
	}
	return s, nil
}

// splitSubdir splits "URL//sub/dir" after the scheme's "://".
func splitSubdir(s string) (string, string) {
	from := 0
	if i := strings.Index(s, "://"); i >= 0 {
		from = i + 3
	}
	if i := strings.Index(s[from:], "//"); i >= 0 {
		return s[:from+i], s[from+i+2:]
	}
	return s, ""
}

func cleanSubdir(sub string) (string, error) {
	if sub == "" {
		return "", nil
	}
	c := path.Clean(sub)
	if path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", errors.New("the //subdir must stay inside the source")
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

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

// plugError names the plug in an error, keeping its kind.
func plugError(plug string, err error) error {
	if err == nil {
		return nil
	}
	if IsInputError(err) {
		return &inputError{fmt.Errorf("plug %s: %w", plug, err)}
	}
	return fmt.Errorf("plug %s: %w", plug, err)
}
