// Package api is the daemon's local API as its clients see it: the wire
// types of plugs.sock (status, plan, apply, restart, logs), the errors with
// their kind (input: stalled until the input changes; env: retried) and
// their diagnostics in the shape of plugs validate -o json, a text
// renderer for those diagnostics, and the Client the CLI uses.
//
// It holds no daemon logic and does not parse plugs.hcl: the daemon
// serves these types, api/hcldiag makes diagnostics from HCL's.
package api
