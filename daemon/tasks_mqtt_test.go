package daemon

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/internal/mqtttest"
	"github.com/plugs-dev/plugs/mqtt"
	"github.com/plugs-dev/plugs/task"
)

// echoTaskDeployment is one task that answers its input back as JSON,
// and its run count in a file; host is fixed so that the topics are known.
func echoTaskDeployment(t *testing.T, dir, brokerBlock string) string {
	t.Helper()
	writeFile(t, filepath.Join(dir, "plugins", "echo", "plugin.hcl"), `plugin "echo" {
  command = ["sh", "-c", "echo run >> \"$RUNS\"; printf '{\"got\": %s, \"trigger\": \"%s\"}' \"$(cat)\" \"$PLUGS_TRIGGER\""]
  task {}
}
`)
	file := filepath.Join(dir, "plugs.hcl")
	writeFile(t, file, `host = "edge-mqtt"
`+brokerBlock+`
plug "echo" {
  source = "./plugins/echo"
  env    = { RUNS = "`+filepath.Join(dir, "runs")+`" }
}
`)
	return file
}

// rr calls like a user does: mosquitto_rr, MQTT 5. It returns the printed
// answer ("<correlation data> <content type> <payload>") and whether one
// came within wait.
func rr(t *testing.T, brokerURL, user, pw, topic, resp, msg string, wait int, extra ...string) (string, bool) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto_rr")
	if err != nil {
		t.Fatalf("mosquitto_rr not installed (run scripts/test-deps.sh): %v", err)
	}
	u, _ := url.Parse(brokerURL)
	args := []string{"-V", "5", "-h", u.Hostname(), "-p", u.Port(), "-u", user, "-P", pw, "-t", topic, "-e", resp,
		"-m", msg, "-q", "1", "-W", itoa(wait), "-F", "%D %C %p"}
	out, err := exec.Command(bin, append(args, extra...)...).CombinedOutput()
	if err != nil {
		t.Logf("mosquitto_rr as %s: %v: %s", user, err, out)
		return string(out), false
	}
	return strings.TrimSpace(string(out)), true
}

// answerOf parses the payload of an rr line and checks the correlation
// data and content type came back.
func answerOf(t *testing.T, line, corr string) task.Result {
	t.Helper()
	c, rest, _ := strings.Cut(line, " ")
	ct, payload, _ := strings.Cut(rest, " ")
	if c != corr || ct != "application/json" {
		t.Fatalf("answer %q: correlation data %q (want %q), content type %q", line, c, corr, ct)
	}
	var res task.Result
	if err := json.Unmarshal([]byte(payload), &res); err != nil {
		t.Fatalf("answer %q: %v", payload, err)
	}
	return res
}

func runCount(t *testing.T, dir string) int {
	b, _ := os.ReadFile(filepath.Join(dir, "runs"))
	return strings.Count(string(b), "run\n")
}

// TestTaskExecOverMQTTEmbedded calls a task through a running daemon's
// embedded broker with mosquitto_rr, as the README shows: the caller
// account may; the reader account, an instance's account and a wrong
// password may not, and their calls never run.
func TestTaskExecOverMQTTEmbedded(t *testing.T) {
	dir := t.TempDir()
	file := echoTaskDeployment(t, dir, "")
	stateDir := filepath.Join(dir, ".plugs")
	c := startDaemon(t, Options{File: file, StateDir: stateDir, NoWatch: true, Logger: testLogger(t)})
	// No waiting for the subscription: once the daemon is ready, a call is
	// received (the first reconcile waited for it).
	st, err := c.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := "subscribed to plugs/edge-mqtt/+/+/exec"; st.Daemon.TaskCallsMQTT != want {
		t.Fatalf("status task_calls_mqtt = %q, want %q", st.Daemon.TaskCallsMQTT, want)
	}
	brokerDir := BrokerDir(stateDir)
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	callerPW := read(mqtt.CallerPasswordPath(brokerDir))
	if fi, _ := os.Stat(mqtt.CallerPasswordPath(brokerDir)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("caller.password mode %v", fi.Mode().Perm())
	}
	topic := mqtt.ExecTopic("edge-mqtt", "echo", "default")
	replies := mqtt.ExecReplyPrefix("edge-mqtt")

	line, ok := rr(t, st.Daemon.BrokerURL, "caller", callerPW, topic, replies+"me", `{"n": 1}`, 20,
		"-D", "publish", "correlation-data", "call-7", "-D", "publish", "user-property", "timeout", "5s")
	if !ok {
		t.Fatalf("the caller's call was not answered: %s", line)
	}
	res := answerOf(t, line, "call-7")
	if res.Result != task.ResultSuccess || res.Trigger != task.TriggerCall || res.OutputType != task.OutputJSON ||
		string(res.Output) != `{"got":{"n":1},"trigger":"call"}` {
		t.Fatalf("answer %+v (output %s)", res, res.Output)
	}
	if runs, err := task.UnixClient(api.SocketPath(stateDir)).Runs(t.Context(), "echo", "", 0); err != nil || len(runs) != 1 || runs[0].RunID != res.RunID {
		t.Fatalf("history %+v %v, want the run %s", runs, err, res.RunID)
	}

	// A timeout above the task's max_timeout is the caller's error, answered.
	line, ok = rr(t, st.Daemon.BrokerURL, "caller", callerPW, topic, replies+"me", `{}`, 20,
		"-D", "publish", "correlation-data", "c2", "-D", "publish", "user-property", "timeout", "1h")
	if !ok || !strings.Contains(line, `"kind":"input"`) {
		t.Fatalf("a timeout above max_timeout: %q", line)
	}
	if n := runCount(t, dir); n != 1 {
		t.Fatalf("%d runs after a refused timeout, want 1", n)
	}

	// Who may not call: their publish is refused by the broker's ACL, so
	// nothing runs and no answer comes.
	instUser, instPW := func() (string, string) {
		a, err := mqtt.ReadAuth(brokerDir)
		if err != nil {
			t.Fatal(err)
		}
		return a.Instance("echo", "default")
	}()
	for _, who := range []struct{ user, pw, resp string }{
		{"reader", read(mqtt.ReaderPasswordPath(brokerDir)), replies + "r"},
		{instUser, instPW, "plugs/edge-mqtt/echo/default/r"}, // a topic it may read
		{"caller", "wrong-password", replies + "w"},
		{"plugs", "guess", replies + "g"},
	} {
		if line, ok := rr(t, st.Daemon.BrokerURL, who.user, who.pw, topic, who.resp, `{"n": 2}`, 2); ok {
			t.Errorf("%s's call was answered: %s", who.user, line)
		}
	}
	// The caller may not read outside plugs/<host>/replies/ (state topics,
	// data): mosquitto_rr's subscription to its response topic is refused,
	// and it never sends the call.
	if line, _ := rr(t, st.Daemon.BrokerURL, "caller", callerPW, topic, "plugs/edge-mqtt/echo/default/state", `{"n": 3}`, 2); !strings.Contains(line, "Not authorized") {
		t.Errorf("a response topic outside replies/: %q, want Not authorized", line)
	}
	time.Sleep(300 * time.Millisecond) // a run, had one started, is written by now
	if n := runCount(t, dir); n != 1 {
		t.Fatalf("%d runs, want 1 (the refused accounts must run nothing)", n)
	}
}

// TestTaskExecOverMQTTMosquitto calls a task through a daemon connected to
// a real Mosquitto that refuses anonymous clients; the broker's acl_file
// decides who may call (the README's example).
func TestTaskExecOverMQTTMosquitto(t *testing.T) {
	users := map[string]string{"plugs": "daemon-pw", "caller": "caller-pw", "dash": "dash-pw"}
	brokerURL := mqtttest.MosquittoWithACL(t, users, `user plugs
topic readwrite plugs/#

user caller
topic write plugs/+/+/+/exec
topic read plugs/+/replies/#

user dash
topic read plugs/#
`)
	dir := t.TempDir()
	file := echoTaskDeployment(t, dir, `broker {
  url      = "`+brokerURL+`"
  username = "plugs"
  password = "daemon-pw"
}`)
	stateDir := filepath.Join(dir, ".plugs")
	c := startDaemon(t, Options{File: file, StateDir: stateDir, NoWatch: true, Logger: testLogger(t)})
	// The daemon's first connection may still be on its way when it is
	// ready (an external broker is never waited for): wait until status
	// says calls are received.
	st := waitStatus(t, c, "the exec subscription", func(s *api.Status) bool {
		return strings.HasPrefix(s.Daemon.TaskCallsMQTT, "subscribed")
	})
	if strings.Contains(st.Daemon.BrokerURL, "daemon-pw") {
		t.Fatalf("status shows the broker password: %s", st.Daemon.BrokerURL)
	}
	topic := mqtt.ExecTopic("edge-mqtt", "echo", "default")
	line, ok := rr(t, brokerURL, "caller", "caller-pw", topic, "plugs/edge-mqtt/replies/ops", `{"n": 1}`, 20,
		"-D", "publish", "correlation-data", "ext-1")
	if !ok {
		t.Fatalf("not answered: %s", line)
	}
	if res := answerOf(t, line, "ext-1"); res.Result != task.ResultSuccess || string(res.Output) != `{"got":{"n":1},"trigger":"call"}` {
		t.Fatalf("answer %+v", res)
	}
	if line, ok := rr(t, brokerURL, "dash", "dash-pw", topic, "plugs/edge-mqtt/replies/dash", `{"n": 2}`, 2); ok {
		t.Errorf("the read-only account's call was answered: %s", line)
	}
	time.Sleep(300 * time.Millisecond)
	if n := runCount(t, dir); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
}
