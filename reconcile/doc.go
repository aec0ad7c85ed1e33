// Package reconcile turns desired state (a spec.Deployment, its lock and its
// manifests) and observed state (what an Executor runs) into a Plan, a pure
// function of its inputs, and applies plans through the Executor interface.
//
// It does not know how a process is spawned, and imports no process,
// network or Prometheus package (a dependency test keeps it so).
package reconcile
