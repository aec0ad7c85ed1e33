// Package task runs plugs that are tasks: plugins that are called (plugs
// exec, the remote HTTP API, MQTT 5 request/response) or run on a schedule,
// instead of being kept running.
//
// It owns the per-plug admission (max_concurrent and a bounded queue, a busy
// answer beyond them), the schedule (cron expressions and intervals, no
// overlap, missed runs, jitter, wall-clock steps), the run history in the
// state directory and the HTTP handler of the task API with its
// authentication. It does not spawn processes: every run goes through a
// Runner (the runner package's RunOnce), which applies the instance's
// environment, process group, timeout and output cap. It does not read
// plugs.hcl either: the daemon hands it the task instances reconcile
// rendered.
package task
