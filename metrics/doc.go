// Package metrics owns the Prometheus collectors of plugs and the HTTP
// handler that serves them with /healthz and /readyz.
//
// It decides nothing: it reads state that other packages own, at scrape time.
package metrics
