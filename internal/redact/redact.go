package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Sensitive is what a secret value is replaced with.
const Sensitive = "(sensitive)"

// userinfoRE matches the userinfo of a URL inside free text: the scheme,
// then everything up to the last '@' before the host, so that a password
// holding '@' is removed whole.
var userinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]*@`)

// Text removes the userinfo (user:password@) of every URL in free text such
// as an error message or a log line.
func Text(s string) string { return userinfoRE.ReplaceAllString(s, "$1") }

// MaskUserinfo overwrites, in place, the userinfo (user:password) of every
// URL in b with '*', keeping b's length so that byte offsets into it stay
// right: for source snippets, whose highlights are offsets.
func MaskUserinfo(b []byte) {
	for _, m := range userinfoRE.FindAllSubmatchIndex(b, -1) {
		for i := m[3]; i < m[1]-1; i++ {
			b[i] = '*'
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
// local paths and scp-like git addresses are kept as they are.
func Source(source string) string {
	forced, rest := "", source
	if i := strings.Index(source, "::"); i >= 0 && !strings.ContainsAny(source[:i], "/:@") {
		forced, rest = source[:i+2], source[i+2:]
	}
	if !strings.Contains(rest, "://") {
		return source
	}
	u, err := url.Parse(rest)
	if err != nil {
		// Never risk showing what could not be understood: drop
		// everything up to the last '@', which may end a password.
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			rest = rest[:strings.Index(rest, "://")+3] + rest[at+1:]
		}
		return forced + rest
	}
	u.User = nil
	u.RawQuery, u.ForceQuery = "", false
	u.Fragment, u.RawFragment = "", ""
	return forced + u.String()
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
