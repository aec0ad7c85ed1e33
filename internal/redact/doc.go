// Package redact is the one home of the rules that keep credentials out of
// what plugs shows: URL userinfo (and, for labels, query and fragment), and
// known secret values, replaced by Sensitive (in source snippets, whose
// offsets must hold, the lines that hold one are blank: BlankValueLines).
// A user:password@ written without its scheme (a URL whose https:// was
// forgotten) counts as userinfo. Logs, status, plans, metrics labels, MQTT
// messages and diagnostics all go through it.
//
// It does not decide what is secret (manifests and the broker block do) and
// does not redact config.json, which holds the secrets by design (render
// writes its Redacted copy with Sensitive).
package redact
