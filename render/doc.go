// Package render turns a decoded deployment (spec.Deployment), the plugin
// trees fetch resolved for it and the broker into the desired instances:
// one instance.Spec per instance of every enabled plug.
//
// It is the one place where
//   - params are merged (manifest default, then plug, then instance) and
//     checked against the manifest's types (spec.InstanceParams has no
//     other caller);
//   - config.json is written (and its Redacted copy, with every secret
//     param and the broker password replaced by Sensitive), and hashed;
//   - instance UUIDs are derived;
//   - every default of an instance is filled: stop timeout, restart policy.
//     A consumer of instance.Spec (the runner) takes its values as they are.
//
// It is pure: no processes, no network, no files (TestDependencies keeps
// it so). It does not read plugs.hcl (spec does), fetch plugins (fetch
// does) or plan (reconcile does).
package render
