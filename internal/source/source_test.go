package source_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/internal/source"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		raw           string
		kind          source.Kind
		location, sub string
	}{
		{"./plugins/x", source.Dir, "/base/plugins/x", ""},
		{"./mono//tools/x", source.Dir, "/base/mono/tools/x", ""},
		{"/abs/x", source.Dir, "/abs/x", ""},
		{"./up.zip", source.Archive, "/base/up.zip", ""},
		{"./V.FP", source.Archive, "/base/V.FP", ""},
		{"../a.tar.gz//inner", source.Archive, "/a.tar.gz", "inner"},
		{"./a.tgz", source.Archive, "/base/a.tgz", ""},
		{"./a.tar", source.Archive, "/base/a.tar", ""},
		{"https://h/x.zip//p", source.RemoteArchive, "https://h/x.zip", "p"},
		{"git::https://u:pw@h/r.git//sub", source.Git, "https://h/r.git", "sub"},
		{"git::./repo", source.Git, "/base/repo", ""},
		{"git::git@h:acme/r.git", source.Git, "git@h:acme/r.git", ""},
	} {
		s, err := source.Parse(c.raw, "/base")
		if err != nil {
			t.Errorf("Parse(%q): %v", c.raw, err)
			continue
		}
		if s.Kind != c.kind || s.Location != c.location || s.Subdir != c.sub {
			t.Errorf("Parse(%q) = %v %q %q, want %v %q %q", c.raw, s.Kind, s.Location, s.Subdir, c.kind, c.location, c.sub)
		}
	}
	for _, raw := range []string{"plugins/x", "git::nope", "https://h/x.git", "https://u:hunter2@h/x.zip", "git::ftp://u:hunter2@h/r", "./x//../../y", ""} {
		if _, err := source.Parse(raw, "/base"); err == nil {
			t.Errorf("Parse(%q) accepted", raw)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Parse(%q): error shows the password: %v", raw, err)
		}
	}
}

// TestPasswordWithoutSchemeRefused: "alice:token@host/repo.git" is an https
// URL whose scheme was forgotten, not the scp-like form (user@host:path,
// whose ':' comes after the '@'). It is refused with an error that says to
// write the scheme and holds no part of the password; scp-like addresses
// still parse.
func TestPasswordWithoutSchemeRefused(t *testing.T) {
	for _, raw := range []string{
		"git::alice:s3cr3tT0ken@127.0.0.1/p2.git",
		"git::bob:s3cr3tT0ken@127.0.0.1:cfg.git",
		"git::bob:s3cr3tT0ken@127.0.0.1/cfg.git//sub",
		"git::s3cr3tT0ken@127.0.0.1/p2.git",
	} {
		s, err := source.Parse(raw, "/base")
		if err == nil {
			t.Errorf("Parse(%q) accepted: %+v", raw, s)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("Parse(%q): error shows the password: %v", raw, err)
		}
		var se *source.Error
		if !errors.As(err, &se) || se.Reason == "" || strings.Contains(se.Source+se.Reason, "s3cr3t") {
			t.Errorf("Parse(%q): error %#v, want a *source.Error without the password", raw, err)
		}
		if strings.Count(raw, ":") > 2 && !strings.Contains(err.Error(), "https://user:token@host") {
			t.Errorf("Parse(%q): %v, want it to say to write the scheme", raw, err)
		}
	}
	for _, raw := range []string{"git::git@h:acme/r.git", "git::deploy@10.0.0.1:/srv/r.git", "git::git@h:acme/r@v1.git"} {
		if s, err := source.Parse(raw, "/base"); err != nil || s.Location != strings.TrimPrefix(raw, "git::") {
			t.Errorf("Parse(%q) = %+v, %v", raw, s, err)
		}
	}
}
