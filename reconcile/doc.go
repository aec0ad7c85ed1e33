// Package reconcile turns desired state (the instance.Specs that package
// render made) and observed state (what an instance.Executor runs) into a
// Plan, and applies plans through the instance.Executor interface.
//
//   - NewPlan is a pure function of desired and observed: per instance a
//     Create, Replace, Update (in place), Delete or NoOp, with Reasons. Only
//     what the process can see (config, revision, command, env, directory,
//     user, limits) causes a Replace; unchanged inputs give an empty plan.
//   - Apply reads only the plan: deletes in reverse depends_on order, then
//     creates and replaces level by level with bounded parallelism, rolling
//     a failed replace back to the old spec. A level starts once the plugs
//     it depends on are ready (an instance.ReadyWaiter: the daemon's health
//     checks), or their deadline passed (ready.go: ReadyDeadline).
//   - Loop debounces and serialises reconciles on triggers.
//   - rollout.go is the health-gated rollout policy (a plug's update {}
//     block): PlugHash names what a plug runs, DecidePlug splits a plug's
//     change into what applies at once and the replaces left to batches
//     (or holds a reverted or pinned revision), Batches cuts them by
//     max_parallel, and BatchVerdict judges a batch from health
//     observations and the time it is given. The daemon holds the state,
//     the timers and the effects.
//
// It does not render specs or read plugs.hcl (it imports no spec, HCL or
// cty), does not know how a process is spawned, and imports no process,
// network or Prometheus package (internal/deps keeps it so).
package reconcile
