package source_test

import (
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
