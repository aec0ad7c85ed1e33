// Package sandbox confines a plugin instance's process: Landlock rules for
// the filesystem and TCP ports (from the plugin's declared permissions and
// the plug's sandbox block), cgroup membership and limits (package
// sandbox/cgroup), rlimits, no_new_privs, and a switch to an unprivileged
// user (the plug's own, or one plugs creates and keeps, like systemd's
// DynamicUser).
//
// The confinement is applied by a shim: the daemon's own executable,
// re-executed under the name in ShimArg0, applies the policy it is handed
// to itself and then execve's the plugin, which so keeps the shim's pid
// (and its parent-death signal). Programs that fork sandboxed children call
// MaybeExec first thing in main (and test binaries in TestMain).
//
// It does not decide when processes start or stop (package runner does),
// nor read plugs.hcl (package spec does).
package sandbox
