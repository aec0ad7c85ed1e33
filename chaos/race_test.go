//go:build race

package chaos

// raceEnabled: a test binary built with -race builds plugs with -race too,
// so that the daemon's data races show in its log.
const raceEnabled = true
