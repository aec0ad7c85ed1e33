// Package e2e holds the end-to-end tests of plugs: they build the plugs
// binary, run the real daemon against real peers (a Mosquitto broker, the
// embedded broker, a Prometheus server, promtool) and real plugins, and
// check what users and dashboards see: retained MQTT state, Open mHealth
// data, metrics, status and plans, and that no secret leaks into any of
// them. It has no code outside its tests.
package e2e
