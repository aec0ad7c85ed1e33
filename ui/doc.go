// Package ui is the dashboard of plugs run: server-rendered HTML pages
// (html/template, assets embedded in the binary, no build step) for the
// people who run a plugin host, with live updates over server-sent events.
//
// It owns the pages (host, instances with filter and sort, one instance with
// its redacted config, process tree, live log and last exits, plugins,
// the pending plan, reconcile history, the rollouts of plugs with an
// update {} block and their history, tasks), the confirmed and CSRF-protected
// actions, the event stream, and the listener policy of --ui-addr (TLS and
// basic auth from a Prometheus web config file; a non-loopback address
// without auth is refused).
//
// It decides nothing and runs nothing: every read and every action goes
// through Backend, which the daemon implements with the same methods its
// local API serves. Configs are shown only in their redacted form: this
// package never reads a spec's Config, only its Redacted bytes.
package ui
