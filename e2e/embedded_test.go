package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/internal/mqtttest"
)

// TestEmbeddedBroker runs the daemon on a deployment without a broker
// block: it starts its embedded broker (on a free port here), its
// instances publish to it, and its retained state follows them.
func TestEmbeddedBroker(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"python3", "mosquitto_pub"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("%s not installed (scripts/test-deps.sh installs it)", cmd)
		}
	}
	host := "e2e-" + randomHex(t)[:8]
	token := "sleep-token-" + randomHex(t)
	secrets := []string{token}

	dir := t.TempDir()
	file := filepath.Join(dir, "plugs.hcl")
	writeFile(t, file, fmt.Sprintf(`host = %q

plug "sleeper" {
  source = %q
  params = { token = %q }
  instance "one" {}
  instance "two" {}
}

plug "mqtt-shell" {
  source = %q
  params = { interval = "1" }
}
`, host, testPlugin(t, "sleeper"), token, examplePlugin(t, "mqtt-shell")))

	d := startDaemon(t, dir, file, nil)
	const one, two, shell = "sleeper/one", "sleeper/two", "mqtt-shell/default"
	st := d.waitStatus(t, "instances running", func(st *api.Status) error {
		if !st.Daemon.BrokerConnected {
			return fmt.Errorf("broker not connected")
		}
		return running(one, two, shell)(st)
	})
	url := st.Daemon.BrokerURL
	if !strings.HasPrefix(url, "tcp://127.0.0.1:") || strings.HasSuffix(url, ":1883") {
		t.Fatalf("embedded broker at %q, want tcp://127.0.0.1 on the free port --broker-addr 127.0.0.1:0 chose", url)
	}

	// The embedded broker refuses anonymous subscribers: the reader account.
	w, got := retainedState(t, mqtttest.Reader(t, url, d.stateDir), host, secrets, one, two, shell)
	for _, id := range []string{one, two, shell} {
		s := w.awaitRunning(host, id, instanceOf(st, id).PID, got)
		if s.Revision != instanceOf(st, id).Revision || s.Since.IsZero() {
			t.Errorf("state of %s = %+v, want revision %s and a time", id, s, instanceOf(st, id).Revision)
		}
	}

	t.Run("instances publish to the embedded broker", func(t *testing.T) {
		topic := "plugs/" + host + "/" + shell + "/data"
		m := w.await("a data point on "+topic, func(m mqtttest.Message) bool { return m.Topic == topic })
		if err := newOMHValidator().ValidateDataPoint(m.Payload, "omh:body-temperature:3.0"); err != nil {
			t.Errorf("data point does not validate: %v\n%s", err, m.Payload)
		}
	})

	t.Run("state follows a killed instance", func(t *testing.T) {
		before := d.waitStatus(t, "instances running", running(one, two))
		b1 := instanceOf(before, one)
		if err := syscall.Kill(b1.PID, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s pid %d: %v", one, b1.PID, err)
		}
		s := w.awaitState(host, one, "running again with a new pid", func(_ mqtttest.Message, s stateMessage) bool {
			return s.State == "running" && s.PID != b1.PID && s.PID != 0
		})
		if s.Restarts != b1.Restarts+1 {
			t.Errorf("after a kill restarts = %d, want %d", s.Restarts, b1.Restarts+1)
		}
		after := d.waitStatus(t, "status shows the restart", func(st *api.Status) error {
			if i := instanceOf(st, one); i == nil || i.PID != s.PID || i.State != "running" {
				return fmt.Errorf("%s: %+v, want running with pid %d", one, i, s.PID)
			}
			return nil
		})
		if b, a := instanceOf(before, two), instanceOf(after, two); a.PID != b.PID || a.Restarts != b.Restarts {
			t.Errorf("%s changed with its sibling: pid %d→%d, restarts %d→%d", two, b.PID, a.PID, b.Restarts, a.Restarts)
		}
	})

	t.Run("secrets stay in config.json", func(t *testing.T) {
		text := mustPlugs(t, dir, nil, "status", "-f", file, "--state-dir", d.stateDir)
		scanForSecrets(t, "plugs status", text.stdout+text.stderr, secrets)
		js := mustPlugs(t, dir, nil, "status", "-o", "json", "-f", file, "--state-dir", d.stateDir)
		scanForSecrets(t, "plugs status -o json", js.stdout+js.stderr, secrets)
		scanForSecrets(t, "/metrics", httpGet(t, "http://"+st.Daemon.MetricsAddr+"/metrics"), secrets)
		configs := scanStateDir(t, d.stateDir, secrets)
		for _, id := range []string{one, two, shell} {
			raw, ok := configs[filepath.Join("instances", filepath.FromSlash(id), "config.json")]
			if !ok {
				t.Errorf("%s has no config.json", id)
				continue
			}
			var c struct {
				Broker struct{ URL string } `json:"broker"`
			}
			if err := json.Unmarshal(raw, &c); err != nil || c.Broker.URL != url {
				t.Errorf("%s config.json broker url %q (%v), want the embedded broker's %q", id, c.Broker.URL, err, url)
			}
			if strings.HasPrefix(id, "sleeper/") && !bytes.Contains(raw, []byte(token)) {
				t.Errorf("%s config.json lacks its token", id)
			}
		}
	})

	t.Run("a clean stop publishes stopped states, then offline, and stops every instance", func(t *testing.T) {
		st := d.waitStatus(t, "instances running", running(one, two, shell))
		if err := d.stop(waitBound); err != nil {
			t.Fatalf("plugs run after SIGTERM: %v\n%s", err, d.log.String())
		}
		stopped := map[string]bool{}
		w.await("status offline", func(m mqtttest.Message) bool {
			var s struct {
				State string `json:"state"`
				PID   int    `json:"pid"`
			}
			if strings.HasSuffix(m.Topic, "/state") && json.Unmarshal(m.Payload, &s) == nil && s.State == "stopped" && s.PID == 0 {
				stopped[m.Topic] = true
			}
			return m.Topic == "plugs/"+host+"/status" && string(m.Payload) == "offline"
		})
		for _, id := range []string{one, two, shell} {
			if !stopped["plugs/"+host+"/"+id+"/state"] {
				t.Errorf("%s: no stopped state (pid 0) before offline; saw %v", id, stopped)
			}
		}
		for _, i := range st.Instances {
			if i.PID != 0 && pidAlive(i.PID) {
				t.Errorf("%s/%s (pid %d) outlived the daemon", i.Plug, i.Instance, i.PID)
				_ = syscall.Kill(-i.PID, syscall.SIGKILL)
			}
		}
	})
	w.drain()
	scanForSecrets(t, "the daemon's log", d.log.String(), secrets)
}
