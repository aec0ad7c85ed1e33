// Package chaos is the chaos suite of plugs: bounded, self-cleaning tests
// that break what a supervisor depends on (the daemon itself, its config
// file, the disk, the MQTT broker, file descriptors, the clock) and check
// that plugs keeps its promises. Each test prints a figure on a line
// "CHAOS <name>: <figure>".
//
// The suite runs the real plugs binary as its own process, with real child
// processes and a real Mosquitto broker; only the clock test runs a runner
// in-process, with a fake clock.
//
// `go test ./chaos/` runs the small configuration (part of `make test`);
// `go test -tags chaos ./chaos/` (`make chaos`) or PLUGS_CHAOS=full runs
// the sizes of issue 7. This package holds nothing but those sizes.
package chaos
