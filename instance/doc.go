// Package instance is the contract between the planner and whatever runs
// plugin instances: the names (ID), the desired state (Spec: everything a
// runner needs to run one instance, already rendered), the observed state
// (Status, State, Exit) and the Executor interface that runner implements
// and reconcile drives.
//
// It is plain data and stdlib only, so that runner, metrics and mqtt can
// share these types without linking the plugs.hcl parser (TestDependencies
// keeps it so). It does not render specs (defaults, params, config.json are
// filled by the render step before a Spec exists), run processes, or plan.
package instance
