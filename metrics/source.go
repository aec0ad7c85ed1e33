package metrics

import "github.com/plugs-dev/plugs/internal/redact"

// RedactSource returns a plug source fit for a label: userinfo, query and
// fragment removed from URLs. The rule is internal/redact's.
func RedactSource(source string) string { return redact.Source(source) }

// redactText removes URL credentials from free text such as an error message.
func redactText(s string) string { return redact.Text(s) }
