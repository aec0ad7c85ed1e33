// Package daemon is the composition root of plugs: it wires spec, fetch,
// reconcile, runner, metrics and mqtt into the long-running `plugs run`
// process, and serves the local API (HTTP over a unix socket in the state
// directory) that the CLI's plan, apply, status, logs and restart use.
//
// It owns the triggers of a reconcile (file watching, SIGHUP, GitOps
// polling, API requests), the state-dir lock, and systemd notification. It
// decides nothing about what runs: the planner in reconcile does.
package daemon
