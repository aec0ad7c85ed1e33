package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/internal/mqtttest"
)

// crashDelay is the fixed restart delay of the crashing plugin (initial
// and max delay alike) from its second crash on (the first restarts at
// once), and crashRun how long each of its runs lasts.
const (
	crashDelay = 300 * time.Millisecond
	crashRun   = 100 * time.Millisecond
)

// TestBrokerOutageDuringRestarts kills the MQTT broker (a real Mosquitto)
// while a plugin crash-loops: the restarts go on while the broker is down,
// each after the delay the policy decides (none for the first, which
// comes before the first outage), and the states are republished
// once the broker is back.
func TestBrokerOutageDuringRestarts(t *testing.T) {
	dir := t.TempDir()
	id := runID(t)
	t.Cleanup(func() { killMarked(id) })
	url, stopBroker, restartBroker := mqtttest.Mosquitto(t)
	files := sleeperFiles(id)
	files["plugs.hcl"] = fmt.Sprintf(`host = "chaos"
broker {
  url = %q
}
plug "crash" {
  source = "./plugins/crash"
  env    = { CHAOS_RUN = %q }
  restart {
    initial_delay = %q
    max_delay     = %q
  }
}
plug "steady" {
  source = "./plugins/sleeper"
  env    = { CHAOS_RUN = %q }
}
`, url, id, crashDelay, crashDelay, id)
	files["plugins/crash/plugin.hcl"] = fmt.Sprintf(`plugin "crash" {
  version = "1.0.0"
  kind    = "script"
  command = ["sh", "./crash.sh", %q]
}
`, id)
	files["plugins/crash/crash.sh"] = fmt.Sprintf("echo \"start $(date +%%s%%N)\"\nsleep %g\nexit 1\n", crashRun.Seconds())
	writeFiles(t, dir, files)

	d := startDaemon(t, dir)
	d.waitReady()
	connected := func(want bool) func() (bool, string) {
		return func() (bool, string) {
			st := d.status()
			return st != nil && st.Daemon.BrokerConnected == want, fmt.Sprintf("broker_connected=%v", !want)
		}
	}
	waitFor(t, "the daemon connected to the broker", connected(true))
	restarts := func() int { return byID(d.status())["crash/default"].Restarts }

	type window struct{ from, to time.Time }
	var outages []window
	grewWhileDown := []int{}
	for range size.BrokerOutages {
		// Let it crash a little with the broker up.
		r0 := restarts()
		waitFor(t, "restarts with the broker up", func() (bool, string) { return restarts() >= r0+2, "" })

		stopBroker()
		down := time.Now()
		waitFor(t, "the daemon to see the broker gone", connected(false))
		r1 := restarts()
		waitFor(t, "restarts while the broker is down", func() (bool, string) {
			n := restarts()
			return n >= r1+4, fmt.Sprintf("restarts %d, %d when the broker went down", n, r1)
		})
		rDown := restarts()
		grewWhileDown = append(grewWhileDown, rDown-r1)
		restartBroker()
		outages = append(outages, window{down, time.Now()})

		// Mosquitto lost every retained message: what arrives was republished.
		msgs := mqtttest.Subscribe(t, url, "plugs/chaos/#")
		waitFor(t, "the daemon reconnected", connected(true))
		mqtttest.Await(t, msgs, "crash state republished", func(m mqtttest.Message) bool {
			var s struct{ Restarts int }
			return m.Topic == "plugs/chaos/crash/default/state" && json.Unmarshal(m.Payload, &s) == nil && s.Restarts >= rDown
		})
		mqtttest.Await(t, msgs, "steady state republished", func(m mqtttest.Message) bool {
			return m.Topic == "plugs/chaos/steady/default/state" && strings.Contains(string(m.Payload), `"running"`)
		})
	}
	if st := byID(d.status())["steady/default"]; st.State != "running" || st.Restarts != 0 {
		t.Errorf("steady is %s after %d restarts, want running and never restarted", st.State, st.Restarts)
	}
	log := d.stop()

	// Every delay the runner chose is the policy's (fixed delay, +/-10%).
	delays := chosenDelays(log)
	lo, hi := time.Duration(float64(crashDelay)*0.9), time.Duration(float64(crashDelay)*1.1)
	for _, dl := range delays {
		if dl < lo || dl > hi {
			t.Errorf("a restart delay of %s, outside the policy's [%s, %s]", dl, lo, hi)
		}
	}
	if len(delays) == 0 {
		t.Error("no restart delay in the daemon log")
	}
	// The crash loop never ran long enough to reset: one immediate restart.
	if n := strings.Count(log, "restart 1 now"); n != 1 {
		t.Errorf("%d immediate restarts in the daemon log, want the first crash's alone", n)
	}
	// No start came earlier than its run plus the policy's delay (none
	// for the first restart); the gaps while the broker was down are
	// reported beside the others.
	starts := crashStarts(t, filepath.Join(dir, ".plugs", "instances", "crash", "default", "output.log"))
	var up, down []time.Duration
	for i := 1; i < len(starts); i++ {
		gap := starts[i].Sub(starts[i-1])
		least := crashRun + lo
		if i == 1 {
			least = crashRun
		}
		if gap < least {
			t.Errorf("start %d came %s after the previous one, before the policy allows (%s)", i, gap, least)
		}
		if slices.ContainsFunc(outages, func(w window) bool { return starts[i-1].After(w.from) && starts[i].Before(w.to) }) {
			down = append(down, gap)
		} else {
			up = append(up, gap)
		}
	}
	if len(down) == 0 {
		t.Error("no restart was seen while the broker was down")
	}
	figure(t, "broker-outage", "%d outages of Mosquitto; restarts kept going while down (+%v); median start-to-start %s with the broker up (%d), %s while down (%d), policy %s+%s±10%% (the first restart at once); %d chosen delays all within policy; states republished after each return",
		size.BrokerOutages, grewWhileDown, median(up), len(up), median(down), len(down), crashRun, crashDelay, len(delays))
}

var delayRE = regexp.MustCompile(`restart \d+ in ([0-9.]+[a-zµ]+)`)

// chosenDelays reads the restart delays the runner logged.
func chosenDelays(log string) []time.Duration {
	var out []time.Duration
	for _, m := range delayRE.FindAllStringSubmatch(log, -1) {
		if d, err := time.ParseDuration(m[1]); err == nil {
			out = append(out, d)
		}
	}
	return out
}

// crashStarts reads the start times the crashing plugin printed.
func crashStarts(t *testing.T, name string) []time.Time {
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for _, line := range strings.Split(string(b), "\n") {
		if ns, ok := strings.CutPrefix(line, "start "); ok {
			n, err := strconv.ParseInt(ns, 10, 64)
			if err != nil {
				t.Fatalf("output line %q: %v", line, err)
			}
			out = append(out, time.Unix(0, n))
		}
	}
	return out
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}
