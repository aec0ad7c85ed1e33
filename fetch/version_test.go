package fetch

import (
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/internal/gittest"

	"github.com/go-git/go-git/v5/plumbing"
)

func TestResolveVersion(t *testing.T) {
	h := func(c byte) plumbing.Hash { return plumbing.NewHash(strings.Repeat(string(c), 40)) }
	refs := newRemoteRefs([]*plumbing.Reference{
		plumbing.NewSymbolicReference("HEAD", "refs/heads/main"),
		plumbing.NewHashReference("refs/heads/main", h('a')),
		plumbing.NewHashReference("refs/heads/dev", h('b')),
		plumbing.NewHashReference("refs/tags/v1.0.0", h('1')),
		plumbing.NewHashReference("refs/tags/v1.2.0", h('2')),
		plumbing.NewHashReference("refs/tags/1.2.5", h('9')), // annotated: the tag object
		plumbing.NewHashReference("refs/tags/1.2.5^{}", h('3')),
		plumbing.NewHashReference("refs/tags/v1.3.0-beta.1", h('4')),
		plumbing.NewHashReference("refs/tags/v2.0.0", h('5')),
		plumbing.NewHashReference("refs/tags/release-x", h('6')),
		plumbing.NewHashReference("refs/tags/v3.0.0-rc1", h('7')),
	})
	for _, tc := range []struct {
		want, version string
		commit        byte
		err           string
	}{
		{want: "", version: "main", commit: 'a'},
		{want: "~> 1.2", version: "1.2.5", commit: '3'},
		{want: "~> 1.2.0", version: "1.2.5", commit: '3'},
		{want: "~> 1.0.0", version: "v1.0.0", commit: '1'},
		{want: ">= 1.0, < 2", version: "1.2.5", commit: '3'},
		{want: ">= 1.0", version: "v2.0.0", commit: '5'}, // not v3.0.0-rc1
		{want: "1.2.0", version: "v1.2.0", commit: '2'},
		// Pre-releases: chosen only by a constraint that names one exactly.
		{want: "1.3.0-beta.1", version: "v1.3.0-beta.1", commit: '4'},
		{want: "= 1.3.0-beta.1", version: "v1.3.0-beta.1", commit: '4'},
		{want: "v1.3.0-beta.1", version: "v1.3.0-beta.1", commit: '4'},
		{want: "~> 1.3.0-beta", err: `no tag of repo satisfies "~> 1.3.0-beta"; candidates: v3.0.0-rc1, v2.0.0, v1.3.0-beta.1, 1.2.5, v1.2.0, v1.0.0`},
		{want: ">= 1.3.0-beta.1, < 2.0.0", err: `no tag of repo satisfies ">= 1.3.0-beta.1, < 2.0.0"; candidates: v3.0.0-rc1, v2.0.0, v1.3.0-beta.1, 1.2.5, v1.2.0, v1.0.0`},
		{want: "!= 1.2.1", version: "v2.0.0", commit: '5'},
		{want: ">= 3.0.0-rc1", err: `no tag of repo satisfies ">= 3.0.0-rc1"; candidates: v3.0.0-rc1, v2.0.0, v1.3.0-beta.1, 1.2.5, v1.2.0, v1.0.0`},
		{want: "<= 2.0.0-beta1", version: "1.2.5", commit: '3'},
		{want: "~> 1.3.0-rc1", err: `no tag of repo satisfies "~> 1.3.0-rc1"; candidates: v3.0.0-rc1, v2.0.0, v1.3.0-beta.1, 1.2.5, v1.2.0, v1.0.0`},
		{want: "3.0.0-rc1", version: "v3.0.0-rc1", commit: '7'},
		// Care's pip-style "@" versions.
		{want: "@v1.0.0", version: "v1.0.0", commit: '1'},
		{want: "@main", version: "main", commit: 'a'},
		{want: "@~> 1.2", version: "1.2.5", commit: '3'},
		{want: "v2.0.0", version: "v2.0.0", commit: '5'},
		{want: "release-x", version: "release-x", commit: '6'},
		{want: "dev", version: "dev", commit: 'b'},
		{want: strings.Repeat("5", 40), version: "v2.0.0", commit: '5'},
		{want: strings.Repeat("c", 40), version: "", commit: 'c'},
		{want: "~> 3.0", err: `no tag of repo satisfies "~> 3.0"; candidates: v3.0.0-rc1, v2.0.0, v1.3.0-beta.1, 1.2.5, v1.2.0, v1.0.0`},
		{want: "nope", err: `no tag or branch "nope" in repo; tags: v3.0.0-rc1, v2.0.0, v1.3.0-beta.1, 1.2.5, v1.2.0, v1.0.0, release-x`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			got, err := refs.resolve(tc.want, "repo")
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || !IsInputError(err) {
					t.Fatalf("err = %v, want input error %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != tc.version || got.Commit != h(tc.commit) {
				t.Errorf("resolve(%q) = %s %s, want %s %s", tc.want, got.Version, got.Commit, tc.version, h(tc.commit))
			}
		})
	}
}

func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		raw      string
		kind     sourceKind
		location string
		subdir   string
		err      string
	}{
		{raw: "git::https://u:secret@example.org/a/b.git//plugins/x", kind: kindGit, location: "https://example.org/a/b.git", subdir: "plugins/x"},
		{raw: "git::ssh://git@example.org/a/b.git", kind: kindGit, location: "ssh://git@example.org/a/b.git"},
		{raw: "git::git://127.0.0.1:9418/repo", kind: kindGit, location: "git://127.0.0.1:9418/repo"},
		{raw: "git::file:///srv/repo//sub", kind: kindGit, location: "file:///srv/repo", subdir: "sub"},
		{raw: "git::./repos/x//sub", kind: kindGit, location: "/base/repos/x", subdir: "sub"},
		{raw: "./plugins/x", kind: kindDir, location: "/base/plugins/x"},
		{raw: "../up.zip", kind: kindArchive, location: "/up.zip"},
		{raw: "./v.fp", kind: kindArchive, location: "/base/v.fp"},
		{raw: "./v.tar.gz//inner", kind: kindArchive, location: "/base/v.tar.gz", subdir: "inner"},
		{raw: "git::https://example.org/a//../../etc", err: "must stay inside"},
		{raw: "git::ftp://example.org/a", err: "unsupported scheme"},
		{raw: "https://u:secret@example.org/a.git", err: "want git::URL"},
	} {
		s, err := parseSource(tc.raw, "/base")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("%s: err = %v, want %q without the password", tc.raw, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.raw, err)
			continue
		}
		if s.kind != tc.kind || s.location != tc.location || s.subdir != tc.subdir {
			t.Errorf("%s: got %v %q %q", tc.raw, s.kind, s.location, s.subdir)
		}
	}
	if got := redact("clone https://user:pw@host/x and ssh://git@h/y"); got != "clone https://host/x and ssh://h/y" {
		t.Errorf("redact = %q", got)
	}
}

// TestCareStyleVersions: Care's plugs pin git sources pip-style, with
// version = "@v1.0.0" or "@dev": they lock to the tag and the branch.
func TestCareStyleVersions(t *testing.T) {
	root := t.TempDir()
	_, commits := pluginRepo(t, root, "care")
	base := gittest.Daemon(t, root)
	d := deployment(t, plugOf("tagged", "git::"+base+"/care", "@v1.0.0"), plugOf("branch", "git::"+base+"/care", "@dev"))
	l := mustLock(t, newStore(t), d, nil)
	if e := l.Plugs["tagged"]; e.Version != "v1.0.0" || e.Revision != commits["v1.0.0"] || e.Constraint != "@v1.0.0" {
		t.Errorf("tagged: %+v", e)
	}
	if e := l.Plugs["branch"]; e.Version != "dev" || e.Revision != commits["dev"] {
		t.Errorf("branch: %+v", e)
	}
}
