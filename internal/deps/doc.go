// Package deps holds no code: its test is the one table of which package
// may depend on what (TestDependencies). It keeps the layout DESIGN.md
// describes true by test rather than by habit:
//
//   - runner, metrics, mqtt, reconcile and instance link no plugs.hcl
//     parser: no spec, HCL or cty;
//   - spec, render, reconcile and instance are pure: no processes, no
//     network, no git, no Prometheus, no MQTT;
//   - instance is stdlib only.
package deps
