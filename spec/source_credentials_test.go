package spec

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// TestSourceCredentialsNeverShown validates deployments whose sources carry
// credentials, right and wrong, beside a lock as plugs lock writes it (its
// sources without credentials): no diagnostic, rendered with its snippet as
// plugs validate shows it, holds a credential, a source that differs from
// its lock entry only by its credentials is not out of date, and a refused
// source is an error at its line that says how to write it.
func TestSourceCredentialsNeverShown(t *testing.T) {
	const lockedURL = "git::http://127.0.0.1:19480/p2.git"
	for _, c := range []struct {
		name, source, locked string
		secrets              []string
		want                 string // the summary of the diagnostic at the source line; "" for none
		detail               string // what its detail must say
	}{
		{name: "user and token, locked", source: "git::http://alice:s3cr3tT0ken@127.0.0.1:19480/p2.git", locked: lockedURL,
			secrets: []string{"s3cr3tT0ken"}},
		{name: "token alone, locked", source: "git::http://ghp_SECRET@127.0.0.1:19480/p2.git", locked: lockedURL,
			secrets: []string{"ghp_SECRET"}},
		{name: "https with a token, locked", source: "git::https://x-access-token:ghp_SECRET@127.0.0.1:19480/p2.git", locked: "git::https://127.0.0.1:19480/p2.git",
			secrets: []string{"ghp_SECRET", "x-access-token"}},
		{name: "source changed", source: "git::http://alice:s3cr3tT0ken@127.0.0.1:19480/other.git", locked: lockedURL,
			secrets: []string{"s3cr3tT0ken"}, want: "Lock entry out of date", detail: "git::http://127.0.0.1:19480/other.git"},
		{name: "lock written by hand with the token", source: "git::http://alice:s3cr3tT0ken@127.0.0.1:19480/other.git", locked: "git::http://alice:s3cr3tT0ken@127.0.0.1:19480/p2.git",
			secrets: []string{"s3cr3tT0ken"}, want: "Lock entry out of date", detail: "git::http://127.0.0.1:19480/p2.git"},
		{name: "git: typo", source: "git:https://bob:Hunter2Pass@127.0.0.1/p2.git",
			secrets: []string{"Hunter2Pass"}, want: "Invalid plug source", detail: "git:https://127.0.0.1/p2.git\" is not one plugs can fetch: a git source starts with git:: (two colons)"},
		{name: "archive URL with credentials", source: "http://bob:Hunter2Pass@127.0.0.1/x.zip",
			secrets: []string{"Hunter2Pass"}, want: "Invalid plug source", detail: "credentials in an archive URL are not supported"},
		{name: "scheme forgotten", source: "git::alice:s3cr3tT0ken@127.0.0.1/p2.git",
			secrets: []string{"s3cr3tT0ken"}, want: "Invalid plug source", detail: "git::https://user:token@host/path"},
		{name: "token alone, scheme forgotten", source: "git::ghp_SECRET@127.0.0.1/p2.git",
			secrets: []string{"ghp_SECRET"}, want: "Invalid plug source", detail: "127.0.0.1/p2.git"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "plugs.hcl"), "plug \"p2\" {\n  source  = \""+c.source+"\"\n  version = \"~> 1.0\"\n}\n")
			if c.locked != "" {
				writeFile(t, filepath.Join(dir, LockFileName), "plug \"p2\" {\n  source     = \""+c.locked+"\"\n  constraint = \"~> 1.0\"\n  version    = \"v1.0.0\"\n  revision   = \"3f2c1a9e0b7d4c5a8e6f1b2d3c4a5e6f7a8b9c0d\"\n  hash       = \"h2:x\"\n}\n")
			}
			p, _, diags := validateFile(filepath.Join(dir, "plugs.hcl"), nil)
			shown := render(t, p, diags)
			for _, d := range diags {
				shown += "\n" + d.Summary + "\n" + d.Detail
			}
			for _, s := range c.secrets {
				if strings.Contains(shown, s) {
					t.Errorf("%q shown:\n%s", s, shown)
				}
			}
			var at *hcl.Diagnostic
			for _, d := range diags {
				if d.Summary == "Lock entry out of date" || d.Summary == "Invalid plug source" {
					if at != nil {
						t.Errorf("two diagnostics of the source: %q and %q", at.Summary, d.Summary)
					}
					at = d
				}
			}
			switch {
			case c.want == "" && at != nil:
				t.Errorf("unexpected %q: %s", at.Summary, at.Detail)
			case c.want != "" && at == nil:
				t.Errorf("no %q in:\n%s", c.want, shown)
			case c.want != "":
				if at.Summary != c.want || at.Subject == nil || at.Subject.Start.Line != 2 || !strings.Contains(at.Detail, c.detail) {
					t.Errorf("got %q at %v: %s; want %q at line 2 saying %q", at.Summary, at.Subject, at.Detail, c.want, c.detail)
				}
			}
		})
	}
}
