package source

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"

	"github.com/plugs-dev/plugs/internal/redact"
)

// Kind is what a plug source is.
type Kind int

// The source kinds.
const (
	Git           Kind = iota + 1 // git::URL[//subdir] or git::./path
	Dir                           // ./folder[//subdir], ../folder, /abs/folder
	Archive                       // ./file.zip[//subdir], .fp, .tar.gz, .tgz, .tar
	RemoteArchive                 // https://host/file.zip[//subdir] (or http)
)

func (k Kind) String() string {
	switch k {
	case Git:
		return "git"
	case Dir:
		return "folder"
	case Archive:
		return "archive"
	case RemoteArchive:
		return "archive URL"
	}
	return "invalid"
}

// Local reports whether the source is a path on this machine.
func (k Kind) Local() bool { return k == Dir || k == Archive }

// ArchiveExts are the archive endings, matched without regard to case; .fp
// is a vendor's plugin bundle, which is a zip.
var ArchiveExts = []string{".zip", ".fp", ".tar.gz", ".tgz", ".tar"}

// ArchiveExt is the archive ending of name (lower case), "" when it has none.
func ArchiveExt(name string) string {
	lower := strings.ToLower(name)
	for _, ext := range ArchiveExts {
		if strings.HasSuffix(lower, ext) {
			return ext
		}
	}
	return ""
}

// IsLocalPath reports whether s is written as a path: ./x, ../x, /x, . or ..
func IsLocalPath(s string) bool {
	return strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || strings.HasPrefix(s, "/") || s == "." || s == ".."
}

// Source is a parsed plug source.
type Source struct {
	Kind Kind
	// Location is the git remote URL without credentials, the absolute
	// path of a folder or archive, or the archive URL.
	Location string
	// Subdir is the //subdir inside a git repository or an archive; a
	// folder's subdir is joined into Location.
	Subdir string
	// User is the userinfo of a git http(s) or ssh URL: credentials, never
	// to be printed. Nil for every other kind.
	User *url.Userinfo
}

func (s *Source) String() string {
	if s.Subdir != "" {
		return s.Location + "//" + s.Subdir
	}
	return s.Location
}

// Error is a source Parse refuses. Neither its Source nor its Reason holds
// credentials: both may be shown anywhere.
type Error struct {
	Source string // the source as written, through redact.Source
	Reason string // why it was refused, and what to write instead
}

func (e *Error) Error() string { return fmt.Sprintf("source %q: %s", e.Source, e.Reason) }

// invalid is the Error of raw (the source, or the part of it that is
// wrong); the arguments of format must hold no part of raw.
func invalid(raw, format string, args ...any) error {
	return &Error{Source: redact.Source(raw), Reason: fmt.Sprintf(format, args...)}
}

// Parse parses a plug source as written in plugs.hcl; relative paths
// resolve against baseDir (the folder of plugs.hcl). Its errors are
// *Error, which never hold credentials.
func Parse(raw, baseDir string) (*Source, error) {
	if rest, ok := strings.CutPrefix(raw, "git::"); ok {
		return parseGit(rest, baseDir)
	}
	if strings.HasPrefix(raw, "https://") || strings.HasPrefix(raw, "http://") {
		return parseRemoteArchive(raw)
	}
	if strings.HasPrefix(raw, "git:") && !strings.HasPrefix(raw, "git://") {
		return nil, invalid(raw, "a git source starts with git:: (two colons), as in git::https://host/repo.git")
	}
	if !IsLocalPath(raw) {
		return nil, invalid(raw, "want git::URL[//subdir], a ./folder, a ./file.zip, .fp, .tar.gz or .tgz, or an https:// URL of one")
	}
	p, sub := splitSubdir(raw)
	if !filepath.IsAbs(p) {
		p = filepath.Join(baseDir, filepath.FromSlash(p))
	}
	sub, err := cleanSubdir(sub)
	if err != nil {
		return nil, invalid(raw, "%v", err)
	}
	s := &Source{Kind: Dir, Location: filepath.Clean(p), Subdir: sub}
	if ArchiveExt(p) != "" {
		s.Kind = Archive
	}
	if s.Kind == Dir && sub != "" {
		s.Location, s.Subdir = filepath.Join(s.Location, filepath.FromSlash(sub)), ""
	}
	return s, nil
}

// parseRemoteArchive parses https://host/path/x.zip[//subdir]. Plain http
// is accepted: the lock pins the archive's content.
func parseRemoteArchive(raw string) (*Source, error) {
	loc, sub := splitSubdir(raw)
	sub, err := cleanSubdir(sub)
	if err != nil {
		return nil, invalid(raw, "%v", err)
	}
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" {
		return nil, invalid(loc, "invalid URL")
	}
	if ArchiveExt(u.Path) == "" {
		return nil, invalid(loc, "want git::URL[//subdir] for a git repository; an archive URL must end in .zip, .fp, .tar.gz, .tgz or .tar")
	}
	if u.User != nil {
		return nil, invalid(loc, "credentials in an archive URL are not supported")
	}
	return &Source{Kind: RemoteArchive, Location: u.String(), Subdir: sub}, nil
}

func parseGit(rest, baseDir string) (*Source, error) {
	loc, sub := splitSubdir(rest)
	sub, err := cleanSubdir(sub)
	if err != nil {
		return nil, invalid("git::"+rest, "%v", err)
	}
	s := &Source{Kind: Git, Subdir: sub}
	switch {
	case strings.Contains(loc, "://"):
		u, err := url.Parse(loc)
		if err != nil {
			return nil, invalid("git::"+loc, "invalid URL")
		}
		switch u.Scheme {
		case "http", "https":
			s.User, u.User = u.User, nil
		case "ssh":
			if u.User != nil {
				s.User = u.User
				u.User = url.User(u.User.Username()) // a password never travels in a URL
			}
		case "git", "file":
		default:
			return nil, invalid("git::"+loc, "unsupported scheme %q (want https, http, ssh, git or file)", u.Scheme)
		}
		s.Location = u.String()
	case IsLocalPath(loc) || filepath.IsAbs(loc):
		if !filepath.IsAbs(loc) {
			loc = filepath.Join(baseDir, loc)
		}
		s.Location = filepath.Clean(loc)
	case hasBarePassword(loc):
		return nil, invalid("git::"+loc, "a user:password@ needs its scheme: write git::https://user:token@host/path (an scp-like ssh address is user@host:path, with no password)")
	case strings.Contains(loc, "@") && strings.Contains(loc, ":"): // scp-like user@host:path
		s.Location = loc
	default:
		return nil, invalid("git::"+loc, "want git::URL or git::./path/to/repo")
	}
	return s, nil
}

// hasBarePassword reports whether loc, a git location without a scheme,
// starts with user:password@: a ':' before the first '@'. The scp-like
// form is [user@]host:path, whose ':' comes after the '@'; taking
// "alice:token@host/repo.git" (an https URL whose scheme was forgotten) as
// one would send the token to ssh as a user name and show it as a host.
func hasBarePassword(loc string) bool {
	at := strings.Index(loc, "@")
	colon := strings.Index(loc, ":")
	return at >= 0 && colon >= 0 && colon < at
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
