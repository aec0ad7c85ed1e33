// Package promtest runs a real Prometheus server for tests: it scrapes given
// targets on 127.0.0.1 every second and answers queries through its HTTP
// API. It also extracts the PromQL of a Grafana dashboard, so that a test can
// check that every panel returns data. It is test support: only _test files
// and test helpers import it.
package promtest
