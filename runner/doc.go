// Package runner spawns, stops, restarts and tracks plugin instances: process
// groups, backoff, output capture and instance state files. It implements
// instance.Executor.
//
// It does not read plugs.hcl: everything it knows of an instance comes in a
// instance.Spec.
package runner
