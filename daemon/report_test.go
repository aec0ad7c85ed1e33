package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/internal/mqtttest"
	"github.com/plugs-dev/plugs/mqtt"
	"github.com/plugs-dev/plugs/spec"
)

// TestReconcileOutcomeReported: every reconcile's outcome reaches the
// retained MQTT reconcile topic (of the embedded broker the daemon runs), an
// invalid save is reported there as an error without the broker password,
// and the first fetch of each plug is a plugs_fetch_duration_seconds sample.
func TestReconcileOutcomeReported(t *testing.T) {
	dir := t.TempDir()
	for name, content := range sleeperPlugin {
		writeFile(t, filepath.Join(dir, name), content)
	}
	file := filepath.Join(dir, "plugs.hcl")
	good := "host = \"edge-r\"\n" + sleeperDeployment(map[string]string{"a": "1s"})
	writeFile(t, file, good)
	c := startDaemon(t, Options{File: file, StateDir: filepath.Join(dir, ".plugs"), NoWatch: true})
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	topic := mqtt.ReconcileTopic("edge-r")
	sub := mqtttest.Subscribe(t, mqtttest.Reader(t, st.Daemon.BrokerURL, filepath.Join(dir, ".plugs")), topic)
	outcome := func(what string, ok func(mqtt.ReconcileMessage) bool) mqtt.ReconcileMessage {
		t.Helper()
		var got mqtt.ReconcileMessage
		mqtttest.Await(t, sub, what, func(m mqtttest.Message) bool {
			return m.Topic == topic && json.Unmarshal(m.Payload, &got) == nil && ok(got)
		})
		return got
	}
	first := outcome("the first reconcile's success", func(m mqtt.ReconcileMessage) bool { return m.Result == mqtt.ReconcileSuccess })
	if first.Revision != st.Daemon.ConfigRevision || first.Error != "" || first.At.IsZero() {
		t.Errorf("first outcome = %+v, want success at revision %s", first, st.Daemon.ConfigRevision)
	}

	writeFile(t, file, good+"plug \"b\" {\n  source = \"./plugins/sleeper\"\n  bogus = 1\n}\n")
	if _, err := c.Apply(context.Background()); err == nil {
		t.Fatal("apply of an invalid plugs.hcl succeeded")
	}
	bad := outcome("the failed reconcile", func(m mqtt.ReconcileMessage) bool { return m.Result == mqtt.ReconcileError })
	if !strings.Contains(bad.Error, "Unsupported argument") || bad.Revision == first.Revision {
		t.Errorf("error outcome = %+v, want the diagnostic and the new revision", bad)
	}

	writeFile(t, file, good)
	if _, err := c.Apply(context.Background()); err != nil {
		t.Fatal(err)
	}
	outcome("success again", func(m mqtt.ReconcileMessage) bool { return m.Result == mqtt.ReconcileSuccess })

	resp, err := http.Get("http://" + st.Daemon.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if want := `plugs_fetch_duration_seconds_count{plug="a"} 1`; !strings.Contains(string(body), want) {
		t.Errorf("metrics lack %q (one fetch, later reconciles find the tree in the store):\n%s", want, grepLines(string(body), "plugs_fetch"))
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestReconcileErrorRedactsBrokerPassword: a reconcile error that quotes the
// broker password is reported with the password redacted.
func TestReconcileErrorRedactsBrokerPassword(t *testing.T) {
	const secret = "planted-Secret-91c2"
	b := &brokerConn{}
	d := &daemon{broker: b}
	if got := d.redact("connect tcp://u:" + secret + "@h: refused"); got != "connect tcp://u:"+secret+"@h: refused" {
		t.Fatalf("without a broker block: %q changed", got)
	}
	b.config = &spec.Broker{URL: "tcp://h:1883", Username: "u", Password: secret}
	if got := d.redact("connect tcp://u:" + secret + "@h: refused"); strings.Contains(got, secret) || !strings.Contains(got, "(sensitive)") {
		t.Errorf("redact = %q, want the password replaced", got)
	}
}
