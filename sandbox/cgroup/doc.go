// Package cgroup makes and removes one cgroup per plugin instance, on
// cgroup v2 (the unified hierarchy, e.g. delegated by systemd with
// Delegate=yes) or on the v1 controllers (memory, pids, cpu, cpuacct,
// freezer): memory, CPU and pids limits, membership files for a process to
// join, OOM-kill counts, usage, and a kill of every process inside.
//
// It creates its subtree below the cgroup the daemon itself is in, never
// elsewhere, and does not start processes.
package cgroup
