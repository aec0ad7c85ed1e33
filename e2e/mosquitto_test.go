package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/internal/mqtttest"
	"github.com/plugs-dev/plugs/internal/promtest"
)

// TestMosquittoBroker runs the daemon on a deployment with a broker block
// (a real Mosquitto that checks the password) and three plugs: the
// heart-rate example (built by plugs build), the mqtt-shell example and a
// plugin that crashes over and over. Its steps share the daemon and run in
// order; each needs the ones before it.
func TestMosquittoBroker(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"python3", "mosquitto_pub", "go"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("%s not installed (scripts/test-deps.sh installs it)", cmd)
		}
	}
	host := "e2e-" + randomHex(t)[:8]
	password := "pw-" + randomHex(t)
	token := "hr-token-" + randomHex(t)
	newToken := "hr-token-next-" + randomHex(t)
	flapToken := "flap-token-" + randomHex(t)
	secrets := []string{password, token, newToken, flapToken}

	broker := startMosquitto(t, "plugs", password)
	all := watch(t, broker.url, "plugs/#", secrets) // every message of the run

	dir := t.TempDir()
	file := filepath.Join(dir, "plugs.hcl")
	deployment := func(hrToken string) string {
		return fmt.Sprintf(`host = %q

broker {
  url      = %q
  username = "plugs"
  password = env("E2E_MQTT_PASSWORD")
}

plug "heart-rate" {
  source = %q
  params = { interval = "1s", token = %q }
  instance "patient-17" {
    params = { device_id = "A1:B2:C3:D4:E5:17" }
  }
}

plug "mqtt-shell" {
  source = %q
  params = { interval = "1", location = "oral" }
}

plug "flapper" {
  source = %q
  params = { token = %q }
  restart {
    initial_delay = "200ms"
    max_delay     = "1s"
  }
}

# A scheduled task, so that the dashboard's task panels have data.
plug "notify-sms" {
  source = %q
  schedule {
    every  = "2s"
    jitter = "100ms"
    input  = jsonencode({ to = "+4912345678", text = "e2e" })
  }
}
`, host, broker.url, examplePlugin(t, "heart-rate"), hrToken, examplePlugin(t, "mqtt-shell"),
			testPlugin(t, "flapper"), flapToken, examplePlugin(t, "notify-sms"))
	}
	writeFile(t, file, deployment(token))
	writeFile(t, filepath.Join(dir, "next.hcl"), deployment(newToken))
	env := []string{"E2E_MQTT_PASSWORD=" + password}

	build := mustPlugs(t, dir, env, "build", "-f", file, "--state-dir", filepath.Join(dir, ".plugs"))
	scanForSecrets(t, "plugs build output", build.stdout+build.stderr, secrets)
	// The daemon fetches what the store lacks: drop the flapper's tree, as if
	// the plug had been added after the build, so that the daemon fetches it
	// and plugs_fetch_duration_seconds (a dashboard panel) has a series.
	forgetTree(t, filepath.Join(dir, ".plugs"), "flapper")

	d := startDaemon(t, dir, file, env)
	const hr, shell, flapper = "heart-rate/patient-17", "mqtt-shell/default", "flapper/default"
	st := d.waitStatus(t, "instances running", running(hr, shell))
	if !st.Daemon.BrokerConnected || st.Daemon.BrokerURL != broker.url {
		t.Errorf("daemon broker %q connected=%v, want %q connected", st.Daemon.BrokerURL, st.Daemon.BrokerConnected, broker.url)
	}

	ok := t.Run("retained state", func(t *testing.T) {
		w, got := retainedState(t, broker.url, host, secrets, hr, shell, flapper)
		for _, id := range []string{hr, shell} {
			s := w.awaitRunning(host, id, instanceOf(st, id).PID, got)
			if s.Version != "1.0.0" || s.Revision != instanceOf(st, id).Revision || s.Since.IsZero() {
				t.Errorf("state of %s = %+v; want version 1.0.0, revision %s and a time", id, s, instanceOf(st, id).Revision)
			}
		}
	})

	ok = ok && t.Run("heart-rate data validates against Open mHealth", func(t *testing.T) {
		v := newOMHValidator()
		topic := "plugs/" + host + "/" + hr + "/data"
		var last []byte
		for n := range 3 {
			m := all.await(fmt.Sprintf("data point %d on %s", n+1, topic), func(m mqtttest.Message) bool { return m.Topic == topic })
			if m.Retained {
				t.Errorf("data point on %s is retained; data is not", topic)
			}
			if err := v.ValidateDataPoint(m.Payload, "omh:heart-rate:2.0"); err != nil {
				t.Errorf("data point %d does not validate: %v\n%s", n+1, err, m.Payload)
			}
			last = m.Payload
		}
		// The validator is not vacuous: the same point with a wrong unit fails.
		bad := bytes.Replace(last, []byte(`"beats/min"`), []byte(`"bpm"`), 1)
		if bytes.Equal(bad, last) || v.ValidateDataPoint(bad, "omh:heart-rate:2.0") == nil {
			t.Errorf("a data point with unit bpm was not rejected:\n%s", bad)
		}
	})

	ok = ok && t.Run("state follows a killed instance", func(t *testing.T) {
		before := instanceOf(d.waitStatus(t, "heart-rate running", running(hr)), hr)
		if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s pid %d: %v", hr, before.PID, err)
		}
		s := all.awaitState(host, hr, "running again with a new pid", func(_ mqtttest.Message, s stateMessage) bool {
			return s.State == "running" && s.PID != before.PID && s.PID != 0
		})
		if s.Restarts <= before.Restarts {
			t.Errorf("after a kill restarts = %d, want more than %d", s.Restarts, before.Restarts)
		}
		d.waitStatus(t, "status shows the restart", func(st *api.Status) error {
			i := instanceOf(st, hr)
			if i == nil || i.PID != s.PID || i.Restarts != s.Restarts || i.State != "running" {
				return fmt.Errorf("%s: %+v, want pid %d restarts %d running", hr, i, s.PID, s.Restarts)
			}
			return nil
		})
	})

	ok = ok && t.Run("prometheus scrapes every dashboard query", func(t *testing.T) {
		addr := st.Daemon.MetricsAddr
		d.waitStatus(t, "flapper restarted", func(st *api.Status) error {
			if i := instanceOf(st, flapper); i == nil || i.Restarts < 2 {
				return fmt.Errorf("%s: %+v", flapper, i)
			}
			return nil
		})
		text := httpGet(t, "http://"+addr+"/metrics")
		scanForSecrets(t, "/metrics", text, secrets)
		for _, want := range []string{
			`plugs_instance_up{instance="patient-17",plug="heart-rate"} 1`,
			`plugs_broker_connected 1`,
			`plugs_instance_state{instance="default",plug="flapper",state="`,
			`plugs_instance_restarts_total{instance="default",plug="flapper"}`,
		} {
			if !strings.Contains(text, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		promtool := promtest.Binary(t, "promtool")
		check := exec.Command(promtool, "check", "metrics")
		check.Stdin = strings.NewReader(text)
		if out, err := check.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}

		prom := promtest.Start(t, []string{addr})
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitBound)
		defer cancel()
		if err := prom.WaitForTarget(ctx, addr); err != nil {
			t.Fatalf("%v\n%s", err, prom.Log())
		}
		prom.CheckDashboard(ctx, t, filepath.Join("..", "examples", "grafana", "plugs.json"), addr)
		r, err := prom.Query(ctx, `plugs_instance_restarts_total{plug="flapper"}`)
		if err != nil || len(r.Samples) != 1 || r.Samples[0].Value < 1 {
			t.Errorf("flapper restarts through Prometheus = %+v, %v; want one sample >= 1", r, err)
		}
	})

	ok = ok && t.Run("secrets stay in config.json", func(t *testing.T) {
		plan := plugs(t, dir, env, "plan", "-f", filepath.Join(dir, "next.hcl"), "--state-dir", d.stateDir, "-detailed-exitcode")
		out := plan.stdout + plan.stderr
		if plan.code != 2 {
			t.Errorf("plan of a changed secret: exit %d, want 2 (changes)\n%s", plan.code, out)
		}
		for _, want := range []string{"-/+ heart-rate/patient-17 (config changed)", "Plan: 0 to start, 1 to replace, 0 to stop."} {
			if !strings.Contains(out, want) {
				t.Errorf("plan output lacks %q:\n%s", want, out)
			}
		}
		if !strings.Contains(out, `"token": "(sensitive)"`) {
			t.Errorf("the plan of a change to a secret param shows no changed line; want the param shown as (sensitive):\n%s", out)
		}
		scanForSecrets(t, "plugs plan output", out, secrets)

		text := mustPlugs(t, dir, env, "status", "-f", file, "--state-dir", d.stateDir)
		scanForSecrets(t, "plugs status", text.stdout+text.stderr, secrets)
		if !strings.Contains(text.stdout, "heart-rate") {
			t.Errorf("plugs status shows no heart-rate row:\n%s", text.stdout)
		}
		js := mustPlugs(t, dir, env, "status", "-o", "json", "-f", file, "--state-dir", d.stateDir)
		scanForSecrets(t, "plugs status -o json", js.stdout+js.stderr, secrets)
		var st api.Status
		if err := json.Unmarshal([]byte(js.stdout), &st); err != nil || instanceOf(&st, hr) == nil {
			t.Errorf("plugs status -o json: %v, no %s:\n%s", err, hr, js.stdout)
		}

		configs := scanStateDir(t, d.stateDir, secrets)
		for id, want := range map[string][]string{
			hr:      {token, password},
			shell:   {password},
			flapper: {flapToken, password},
		} {
			rel := filepath.Join("instances", filepath.FromSlash(id), "config.json")
			raw, found := configs[rel]
			if !found {
				t.Errorf("no %s", rel)
				continue
			}
			for _, s := range want {
				if !bytes.Contains(raw, []byte(s)) {
					t.Errorf("%s lacks a secret its instance needs", rel)
				}
			}
			if bytes.Contains(raw, []byte(newToken)) {
				t.Errorf("%s holds the planned token: plan applied something", rel)
			}
		}
		all.drain()
		scanForSecrets(t, "the daemon's log", d.log.String(), secrets)
	})

	ok = ok && t.Run("broker restart is survived and state republished", func(t *testing.T) {
		before := d.waitStatus(t, "instances running", running(hr, shell))
		broker.stop()
		d.waitStatus(t, "broker disconnected in status", func(st *api.Status) error {
			if st.Daemon.BrokerConnected {
				return fmt.Errorf("still connected")
			}
			return nil
		})
		broker.restart()
		after := d.waitStatus(t, "broker reconnected", func(st *api.Status) error {
			if !st.Daemon.BrokerConnected {
				return fmt.Errorf("not connected")
			}
			return running(hr, shell)(st)
		})
		for _, id := range []string{hr, shell} {
			if b, a := instanceOf(before, id), instanceOf(after, id); b.PID != a.PID || a.Restarts != b.Restarts {
				t.Errorf("%s: pid %d restarts %d before the broker restart, pid %d restarts %d after; want unchanged",
					id, b.PID, b.Restarts, a.PID, a.Restarts)
			}
		}
		// The broker lost every retained message: what a fresh subscriber
		// sees was republished.
		w, got := retainedState(t, broker.url, host, secrets, hr, shell, flapper)
		for _, id := range []string{hr, shell} {
			w.awaitRunning(host, id, instanceOf(after, id).PID, got)
		}
	})

	ok = ok && t.Run("SIGKILL of the daemon publishes offline", func(t *testing.T) {
		st := d.waitStatus(t, "instances running", running(hr, shell))
		w := watch(t, broker.url, "plugs/"+host+"/status", secrets)
		w.await("status online", func(m mqtttest.Message) bool { return string(m.Payload) == "online" })
		if err := d.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-d.exited
		w.await("status offline (the will)", func(m mqtttest.Message) bool { return string(m.Payload) == "offline" })
		// Its instances die with it (no orphans); the process groups are
		// killed afterwards in any case, so nothing outlives the test.
		for _, i := range st.Instances {
			if i.PID == 0 {
				continue
			}
			eventually(t, fmt.Sprintf("%s/%s (pid %d) dies with the daemon", i.Plug, i.Instance, i.PID), func() error {
				if pidAlive(i.PID) {
					return fmt.Errorf("alive")
				}
				return nil
			})
			_ = syscall.Kill(-i.PID, syscall.SIGKILL)
		}
		retained := watch(t, broker.url, "plugs/"+host+"/status", secrets)
		retained.await("retained offline", func(m mqtttest.Message) bool { return m.Retained && string(m.Payload) == "offline" })
	})

	ok = ok && t.Run("after a crash the retained states tell that they are stale", func(t *testing.T) {
		// What a consumer does (README, "State that tells the truth"): a
		// state is current only while the host's status is online and its
		// run is the one on plugs/<host>/run.
		runTopic := "plugs/" + host + "/run"
		snapshot := func(what string, done func(map[string][]byte) bool) map[string][]byte {
			t.Helper()
			var got map[string][]byte
			eventually(t, what, func() error {
				got = retainedAll(t, broker.url, "plugs/"+host+"/#")
				if !done(got) {
					return fmt.Errorf("retained: %q", got)
				}
				return nil
			})
			return got
		}
		runOf := func(b []byte) string {
			var v struct {
				Run string `json:"run"`
			}
			_ = json.Unmarshal(b, &v)
			return v.Run
		}
		current := func(got map[string][]byte, topic string) bool {
			return string(got["plugs/"+host+"/status"]) == "online" && runOf(got[topic]) != "" && runOf(got[topic]) == runOf(got[runTopic])
		}
		hrTopic := "plugs/" + host + "/" + hr + "/state"
		shellTopic := "plugs/" + host + "/" + shell + "/state"
		crashed := snapshot("retained state after the crash", func(m map[string][]byte) bool { return m[hrTopic] != nil && m[shellTopic] != nil })
		oldRun := runOf(crashed[runTopic])
		for _, topic := range []string{hrTopic, shellTopic} {
			if runOf(crashed[topic]) != oldRun || oldRun == "" {
				t.Errorf("%s: run %q, want the crashed daemon's %q", topic, runOf(crashed[topic]), oldRun)
			}
			if current(crashed, topic) {
				t.Errorf("%s reads as current after the daemon was killed: %s", topic, crashed[topic])
			}
		}
		// A new daemon whose deployment no longer has mqtt-shell: its
		// retained state stays on the broker, and must read as stale.
		next := filepath.Join(dir, "after-crash.hcl")
		writeFile(t, next, strings.Replace(deployment(token), `params = { interval = "1", location = "oral" }`,
			`params = { interval = "1", location = "oral" }
  enabled = false`, 1))
		d2 := startDaemon(t, dir, next, env)
		d2.waitStatus(t, "heart-rate running", running(hr))
		after := snapshot("the new run's state", func(m map[string][]byte) bool {
			return runOf(m[runTopic]) != oldRun && runOf(m[hrTopic]) == runOf(m[runTopic]) && string(m["plugs/"+host+"/status"]) == "online"
		})
		if !current(after, hrTopic) {
			t.Errorf("heart-rate's state of the new run reads as stale: %s (run %s)", after[hrTopic], after[runTopic])
		}
		if after[shellTopic] != nil && current(after, shellTopic) {
			t.Errorf("mqtt-shell's state left by the crashed run reads as current: %s", after[shellTopic])
		}
		if err := d2.stop(waitBound); err != nil {
			t.Errorf("stop the second daemon: %v", err)
		}
	})
	if !ok {
		t.Logf("the daemon's log:\n%s", d.log.String())
	}
	all.drain()
	scanForSecrets(t, "the daemon's log", d.log.String(), secrets)
	if all.seen == 0 {
		t.Error("the plugs/# subscriber saw no message")
	}
}
