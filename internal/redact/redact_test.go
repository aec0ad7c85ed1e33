package redact_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/internal/redact"
)

// The planted secrets: none may survive any function below.
var planted = []string{"hunter2", "p@ss/word", "tok3n", "s3cr3t-q"}

// TestNoPlantedSecretSurvives runs every redaction over texts that carry the
// planted secrets in every place a credential hides: URL userinfo (with '@'
// and '/' in the password), git:: and scp-like sources, query strings,
// fragments, messages with several URLs, and the plain values.
func TestNoPlantedSecretSurvives(t *testing.T) {
	type fn struct {
		name string
		f    func(string) string
	}
	fns := []fn{
		{"Text", redact.Text},
		{"URLString", redact.URLString},
		{"Source", redact.Source},
		{"Values", func(s string) string { return redact.Values(s, planted...) }},
		{"MaskUserinfo", func(s string) string {
			b := []byte(s)
			redact.MaskUserinfo(b)
			if len(b) != len(s) {
				t.Errorf("MaskUserinfo(%q) changed the length", s)
			}
			return string(b)
		}},
	}
	cases := []struct {
		in   string
		only []string // the functions that must clean it; nil: every one
		keep string   // what must remain
	}{
		{in: "https://user:hunter2@git.example.org/a.git", keep: "git.example.org/a.git"},
		{in: "git::https://user:hunter2@git.example.org/a.git//sub", keep: "git.example.org/a.git"},
		{in: "mqtt://plugs:hunter2@broker:1883", keep: "broker:1883"},
		{in: "tcp://tok3n@broker:1883", keep: "broker:1883"},
		{in: "https://u:p@ss/word@host/x.zip", only: []string{"Source", "Values"}, keep: "host/x.zip"},
		{in: "https://host/x.zip?token=s3cr3t-q", only: []string{"Source", "Values"}, keep: "host/x.zip"},
		{in: "https://host/x.zip#tok3n", only: []string{"Source", "Values"}, keep: "host/x.zip"},
		{in: `fetch plug a: clone "https://x:hunter2@h/a.git": auth failed; retry https://y:tok3n@h/b.git`,
			only: []string{"Text", "Values", "MaskUserinfo"}, keep: "auth failed"},
		{in: "connect to broker failed: password hunter2 rejected", only: []string{"Values"}, keep: "rejected"},
	}
	for _, c := range cases {
		for _, f := range fns {
			if c.only != nil && !contains(c.only, f.name) {
				continue
			}
			got := f.f(c.in)
			for _, s := range planted {
				if strings.Contains(got, s) {
					t.Errorf("%s(%q) = %q: holds %q", f.name, c.in, got, s)
				}
			}
			if !strings.Contains(got, c.keep) {
				t.Errorf("%s(%q) = %q: lost %q", f.name, c.in, got, c.keep)
			}
		}
	}
	// What holds no credential is kept as it is.
	for _, s := range []string{"./plugins/a", "/abs/x.fp", "git::./repo", "git@github.com:acme/a.git", "plain text"} {
		for _, f := range fns {
			if got := f.f(s); got != s {
				t.Errorf("%s(%q) = %q, want it unchanged", f.name, s, got)
			}
		}
	}
	b := []byte(`source = "git::https://alice:hunter2@h/a.git//sub"`)
	if redact.MaskUserinfo(b); string(b) != `source = "git::https://*************@h/a.git//sub"` {
		t.Errorf("MaskUserinfo = %s", b)
	}
	u, _ := url.Parse("mqtts://plugs:hunter2@broker:8883")
	if got := redact.URL(u); strings.Contains(got, "hunter2") || got != "mqtts://broker:8883" {
		t.Errorf("URL = %q", got)
	}
	if u.User == nil {
		t.Error("URL changed its argument")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestCredentialsWithoutScheme: a URL whose scheme was forgotten
// ("alice:token@host/repo.git", a typo of https://alice:token@…), a token
// alone after git::, and a one-colon typo of git:: (git:https://…) keep no
// credential in any redaction, while scp-like addresses and e-mail-like
// text stay as they are.
func TestCredentialsWithoutScheme(t *testing.T) {
	mask := func(s string) string {
		b := []byte(s)
		redact.MaskUserinfo(b)
		if len(b) != len(s) {
			t.Errorf("MaskUserinfo(%q) changed the length", s)
		}
		return string(b)
	}
	fns := map[string]func(string) string{"Text": redact.Text, "URLString": redact.URLString, "Source": redact.Source, "MaskUserinfo": mask}
	for _, c := range []struct{ in, keep string }{
		{"alice:hunter2@127.0.0.1/p2.git", "127.0.0.1/p2.git"},
		{"git::alice:hunter2@127.0.0.1/p2.git", "127.0.0.1/p2.git"},
		{"git::alice:p@ss/word@127.0.0.1/p2.git", "/p2.git"},
		{"git::alice:hunter2@127.0.0.1:p2.git", "127.0.0.1:p2.git"},
		{"git::tok3n@127.0.0.1/p2.git", "127.0.0.1/p2.git"},
		{"git:https://bob:hunter2@h/p2.git", "h/p2.git"},
		{"git:https://tok3n@h/p2.git", "h/p2.git"},
	} {
		for name, f := range fns {
			got := f(c.in)
			for _, s := range planted {
				if strings.Contains(got, s) {
					t.Errorf("%s(%q) = %q: holds %q", name, c.in, got, s)
				}
			}
			if !strings.Contains(got, c.keep) {
				t.Errorf("%s(%q) = %q: lost %q", name, c.in, got, c.keep)
			}
		}
	}
	// In free text and in a source line (a snippet of plugs.hcl, a log line).
	for _, in := range []string{
		`source = "git::alice:hunter2@127.0.0.1/p2.git"`,
		`source = "git::tok3n@127.0.0.1/p2.git"`,
		`err="config repository bob:hunter2@127.0.0.1/cfg.git: refused"`,
		"plugs run --repo bob:hunter2@127.0.0.1/cfg.git",
		"--repo=bob:hunter2@127.0.0.1/cfg.git",
	} {
		for _, name := range []string{"Text", "MaskUserinfo"} {
			got := fns[name](in)
			if strings.Contains(got, "hunter2") || strings.Contains(got, "tok3n") || !strings.Contains(got, "127.0.0.1/") {
				t.Errorf("%s(%q) = %q", name, in, got)
			}
		}
	}
	if got := mask(`source = "git::alice:hunter2@h/a.git"`); got != `source = "git::*************@h/a.git"` {
		t.Errorf("MaskUserinfo = %s", got)
	}
	for _, s := range []string{
		"git@github.com:acme/a.git", "git::git@h:acme/r.git", "git::git@h:acme/r@v1.git",
		"./a:b@c", "/x/a:b@c",
	} {
		for name, f := range fns {
			if got := f(s); got != s {
				t.Errorf("%s(%q) = %q, want it unchanged", name, s, got)
			}
		}
	}
	for _, s := range []string{"mail bob@example.org: done", "plug a: b@c failed", "at 12:30 @daily"} {
		for _, name := range []string{"Text", "MaskUserinfo"} {
			if got := fns[name](s); got != s {
				t.Errorf("%s(%q) = %q, want it unchanged", name, s, got)
			}
		}
	}
}

// TestBlankValueLines: every line that holds a value is blank, the lines of
// a value with a newline too, and nothing moves.
func TestBlankValueLines(t *testing.T) {
	src := "a = 1\nb = \"pw-1\", c\nd = 2\ne = \"x pw-1\"\nf = \"l1\nl2\"\ng = 3\n"
	b := []byte(src)
	redact.BlankValueLines(b, "pw-1", "", "l1\nl2")
	want := "a = 1\n" + strings.Repeat(" ", len(`b = "pw-1", c`)) + "\nd = 2\n" + strings.Repeat(" ", len(`e = "x pw-1"`)) + "\n" +
		strings.Repeat(" ", len(`f = "l1`)) + "\n" + strings.Repeat(" ", len(`l2"`)) + "\ng = 3\n"
	if string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
}

// TestValuesReplacer: every secret goes, the longest whole where one holds
// another.
func TestValuesReplacer(t *testing.T) {
	r := redact.ValuesReplacer("pw-12345", "pw-1", "")
	if got := r.Replace(`"pw-12345" and pw-1x`); got != `"(sensitive)" and (sensitive)x` {
		t.Errorf("got %q", got)
	}
}
