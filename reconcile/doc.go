// Package reconcile turns desired state (a spec.Deployment, its resolved
// plugins and manifests) and observed state (what an instance.Executor runs) into a
// Plan, and applies plans through the instance.Executor interface.
//
//   - Desired renders one instance.Spec per instance, with its config.json
//     (Config, secrets included) and a Redacted copy for plans and logs.
//   - NewPlan is a pure function of desired and observed: per instance a
//     Create, Replace, Update (in place), Delete or NoOp, with Reasons. Only
//     what the process can see (config, revision, command, env, directory,
//     user, limits) causes a Replace; unchanged inputs give an empty plan.
//   - Apply reads only the plan: deletes in reverse depends_on order, then
//     creates and replaces level by level with bounded parallelism, rolling
//     a failed replace back to the old spec.
//   - Loop debounces and serialises reconciles on triggers.
//
// It does not know how a process is spawned, and imports no process,
// network or Prometheus package (TestDependencies keeps it so).
package reconcile
