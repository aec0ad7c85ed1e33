// Package names is the one home of what a plug, instance or plugin name
// may be (it becomes a directory name, a file name part, an MQTT topic
// level and a metric label), and of what is safe as one path element
// (what runner, daemon and bundles accept from outside: state files, API
// requests, archives).
package names

import "strings"

// MaxBytes is the longest plug or instance name: a name is a path element
// of the state directory and of files named after both names (such as
// "<plug>-<instance>-*.json"), which must stay within 255 bytes.
const MaxBytes = 100

// Valid reports whether s can name a plug, an instance or a plugin: a
// letter or digit, then letters, digits, '_', '.' and '-', at most
// MaxBytes long.
func Valid(s string) bool { return len(s) <= MaxBytes && ValidChars(s) }

// ValidChars is Valid without the length (^[A-Za-z0-9][A-Za-z0-9_.-]*$).
// A loop, not a regexp: it runs for every name of a deployment.
func ValidChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// PathElement reports whether s is safe as one path element: not empty,
// not "." or "..", no separator and no NUL.
func PathElement(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}
