// Package spec decodes plugs.hcl, plugin manifests (plugin.hcl and the two
// legacy plugin.json shapes) and plugs.lock.hcl into typed values, reporting
// every mistake as hcl.Diagnostics with source ranges.
//
// It does not fetch, build or run anything: it never imports os/exec, net,
// go-git or Prometheus (a dependency test keeps it so).
package spec
