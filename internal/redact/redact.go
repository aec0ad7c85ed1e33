package redact

import (
	"bytes"
	"net/url"
	"regexp"
	"strings"
)

// Sensitive is what a secret value is replaced with.
const Sensitive = "(sensitive)"

// The credentials a text may hold, each matched as (what to keep before)
// (the userinfo) '@' (what to keep after): Text drops the userinfo and its
// '@', MaskUserinfo overwrites the userinfo alone.
var userinfoREs = []*regexp.Regexp{
	// The userinfo of a URL: the scheme, then everything up to the last
	// '@' before the host, so that a password holding '@' is removed whole.
	regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)([^\s/?#]*)@()`),
	// A user:password@ written without a scheme (a URL whose https:// was
	// forgotten, "alice:token@host/repo.git"): at the start of the text,
	// after a space, a quote, '=' or a forced getter's "::", a user, a
	// ':' and everything up to the last '@' before a '/'. An scp-like git
	// address (git@host:path) does not match: its ':' comes after its '@';
	// nor does a forced getter's "git::" (the password does not start
	// with ':').
	regexp.MustCompile(`(^|[\s"'=(\[,<]|::)([^\s"'=(\[,<>/?#@:]+:(?:[^\s"'/?#:][^\s"'/?#]*)?)@()`),
	// A token alone after a forced getter, without a scheme
	// ("git::TOKEN@host/repo.git"): a user@ whose host has no ':' before
	// its path is not the scp-like form.
	regexp.MustCompile(`(::)([^\s"'/?#@:]+)@([^\s"'/?#:@]*(?:[\s"'/?#]|$))`),
}

// Text removes the userinfo (user:password@) of every URL in free text such
// as an error message or a log line, and a user:password@ written without
// a scheme.
func Text(s string) string {
	if !strings.Contains(s, "@") {
		return s // no userinfo without its '@': most texts, at no cost (a lock of 1,000 plugs redacts each source)
	}
	for _, re := range userinfoREs {
		s = re.ReplaceAllString(s, "$1$3")
	}
	return s
}

// MaskUserinfo overwrites, in place, the userinfo (user:password) of every
// URL in b, and one written without a scheme, with '*', keeping b's length
// so that byte offsets into it stay right: for source snippets, whose
// highlights are offsets.
func MaskUserinfo(b []byte) {
	if bytes.IndexByte(b, '@') < 0 {
		return
	}
	for _, re := range userinfoREs {
		for _, m := range re.FindAllSubmatchIndex(b, -1) {
			for i := m[4]; i < m[5]; i++ {
				b[i] = '*'
			}
		}
	}
}

// URL returns u without its userinfo, for logs and errors.
func URL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// URLString is URL for a URL as written; text that does not parse is
// cleaned as Text.
func URLString(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return Text(raw)
	}
	return URL(u)
}

// Source returns a plug source fit for a metric label or a status line:
// userinfo, query and fragment removed from URLs (they may carry passwords,
// tokens or signed parameters). A forced getter prefix (git::) is kept;
// local paths and scp-like git addresses are kept as they are. What is
// returned went through Text too: a source that is not what it seems
// (git:https://user:token@host, a typo of git::) keeps no credentials.
func Source(source string) string {
	forced, rest := "", source
	if i := strings.Index(source, "::"); i >= 0 && !strings.ContainsAny(source[:i], "/:@") {
		forced, rest = source[:i+2], source[i+2:]
	}
	if !strings.Contains(rest, "://") {
		if at := strings.Index(rest, "@"); at >= 0 && !isLocalPath(rest) && !strings.Contains(rest[at+1:], ":") {
			// Neither a URL nor scp-like (user@host:path): what comes
			// before an '@' may be a token.
			return forced + rest[strings.LastIndex(rest, "@")+1:]
		}
		return Text(source)
	}
	u, err := url.Parse(rest)
	if err != nil {
		// Never risk showing what could not be understood: drop
		// everything up to the last '@', which may end a password.
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			rest = rest[:strings.Index(rest, "://")+3] + rest[at+1:]
		}
		return Text(forced + rest)
	}
	u.User = nil
	u.RawQuery, u.ForceQuery = "", false
	u.Fragment, u.RawFragment = "", ""
	return Text(forced + u.String())
}

// isLocalPath reports whether s is written as a path (internal/source's
// rule, which imports this package).
func isLocalPath(s string) bool {
	return strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") || strings.HasPrefix(s, "/") || s == "." || s == ".."
}

// Values replaces every occurrence of each non-empty secret value in s
// (a broker password, a secret param) with Sensitive.
func Values(s string, secrets ...string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, Sensitive)
		}
	}
	return s
}

// ValuesReplacer is Values for many texts and many secrets: one pass over
// each text. Where two secrets match at the same place the one given
// first wins: give the longest first, so that a secret that holds another
// is replaced whole.
func ValuesReplacer(secrets ...string) *strings.Replacer {
	oldnew := make([]string, 0, 2*len(secrets))
	for _, v := range secrets {
		if v != "" {
			oldnew = append(oldnew, v, Sensitive)
		}
	}
	return strings.NewReplacer(oldnew...)
}

// BlankValueLines overwrites with spaces, in place, every line of b that
// holds one of the non-empty values (each line an occurrence overlaps, for
// a value with newlines), keeping b's length and its newlines so that byte
// offsets into it stay right: Values for source snippets, whose highlights
// are offsets. A whole line goes rather than the value alone, as a
// secret's own line does (its length would show otherwise).
func BlankValueLines(b []byte, values ...string) {
	for _, v := range values {
		if v == "" {
			continue
		}
		for off := 0; off < len(b); {
			i := bytes.Index(b[off:], []byte(v))
			if i < 0 {
				break
			}
			start, end := off+i, off+i+len(v)
			for start > 0 && b[start-1] != '\n' {
				start--
			}
			for end < len(b) && b[end] != '\n' {
				end++
			}
			for j := start; j < end; j++ {
				if b[j] != '\n' && b[j] != '\r' {
					b[j] = ' '
				}
			}
			off = end
		}
	}
}
