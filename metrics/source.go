package metrics

import (
	"net/url"
	"regexp"
	"strings"
)

// RedactSource returns a plug source fit for a label: userinfo, query and
// fragment removed from URLs (they may carry passwords, tokens or signed
// parameters). Local paths and scp-like git addresses are kept as they are.
func RedactSource(source string) string {
	forced, rest := "", source
	if i := strings.Index(source, "::"); i >= 0 && !strings.ContainsAny(source[:i], "/:@") {
		forced, rest = source[:i+2], source[i+2:]
	}
	if !strings.Contains(rest, "://") {
		return source
	}
	u, err := url.Parse(rest)
	if err != nil {
		// Never risk exporting what could not be understood: drop
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

// credentialsRE matches the userinfo of a URL inside free text.
var credentialsRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]*@`)

// redactText removes URL credentials from free text such as an error message.
func redactText(s string) string { return credentialsRE.ReplaceAllString(s, "$1") }
