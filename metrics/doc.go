// Package metrics owns the Prometheus collectors of plugs and the HTTP
// handler that serves them with /healthz and /readyz.
//
// It decides nothing: it reads state that other packages own, at scrape time.
//
// The per-instance series (plugs_instance_*) and plugs_plug_info come from a
// Source read at every scrape. CPU and resident memory are read from /proc
// through procfs: when an instance's pid leads its process group (the runner
// starts every instance in its own), the whole group is summed, so that the
// children of a shell plugin count; CPU includes reaped children. The Go and
// process collectors of the daemon itself are registered by NewRegistry, not
// by New, so that tests can compare exact output on a bare registry.
//
// Label names follow DESIGN.md: plug and instance. Prometheus keeps its own
// target label instance (the host), so a scraped series' plugs instance is
// stored as exported_instance; the example dashboard and alerts rely on that.
// Only the labels listed in DESIGN.md are exported, and plug sources lose
// their credentials: no secret reaches a scrape.
package metrics
