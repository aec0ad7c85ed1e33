// Package daemon is the composition root of plugs: it wires spec, fetch,
// reconcile, runner, metrics and mqtt into the long-running `plugs run`
// process, and serves the local API (HTTP over a unix socket in the state
// directory) that the CLI's plan, apply, status, logs and restart use.
//
// It owns the triggers of a reconcile (file watching, SIGHUP, GitOps
// polling, API requests), the state-dir lock, and systemd notification. It
// decides nothing about what runs: the planner in reconcile does. It
// reports the outcome of every reconcile on the log, in metrics
// (plugs_reconcile_total, plugs_config_last_reload_*), in plugs status and
// on the retained MQTT topic plugs/<host>/reconcile, and the time each
// plug's fetch took in plugs_fetch_duration_seconds.
//
// It also runs a plug's setup program for the CLI and the dashboard
// (POST /v1/setup; without a daemon, Setup confines it in the caller's
// process), and owns the daemon's use of memory and disk around a
// reconcile: fewer collections during the load, the load's garbage given
// back after it (memory.go), the new plugin trees flushed to disk once it
// is done (flush.go).
package daemon
