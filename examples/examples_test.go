package examples

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/plugs-dev/plugs/internal/mqtttest"
	"github.com/plugs-dev/plugs/internal/omh"
	"github.com/plugs-dev/plugs/mqtt"
	"github.com/plugs-dev/plugs/spec"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newOMHValidator validates against the schemas copied into testdata.
func newOMHValidator() *omh.Validator {
	return omh.NewValidator(filepath.Join("testdata", "omh", "schema"))
}

// TestOMHSchemasUpstreamExamples shows that the validator the plugin tests
// rely on accepts the upstream shouldPass examples and rejects every
// shouldFail one.
func TestOMHSchemasUpstreamExamples(t *testing.T) {
	v := newOMHValidator()
	for _, schema := range []struct{ dir, name, version string }{
		{"heart-rate-2.0", "heart-rate", "2.0"},
		{"header-1.2", "header", "1.2"},
	} {
		for _, outcome := range []string{"shouldPass", "shouldFail"} {
			files, err := filepath.Glob(filepath.Join("testdata", "omh", "test-data", schema.dir, outcome, "*.json"))
			if err != nil {
				t.Fatal(err)
			}
			if len(files) == 0 {
				t.Fatalf("no %s examples for %s", outcome, schema.dir)
			}
			for _, file := range files {
				t.Run(schema.dir+"/"+outcome+"/"+filepath.Base(file), func(t *testing.T) {
					raw, err := os.ReadFile(file)
					if err != nil {
						t.Fatal(err)
					}
					err = v.Validate(raw, schema.name, schema.version)
					if outcome == "shouldPass" && err != nil {
						t.Errorf("valid example rejected: %v", err)
					}
					if outcome == "shouldFail" && err == nil {
						t.Errorf("invalid example accepted")
					}
				})
			}
		}
	}
}

// TestOMHValidatorRejectsWrongBody checks that a body is held to the schema
// its header names, not merely to "an object".
func TestOMHValidatorRejectsWrongBody(t *testing.T) {
	v := newOMHValidator()
	good := `{"header":{"id":"3b4f2c1e-1111-4222-8333-944445555666","creation_date_time":"2024-05-01T10:00:00.000Z",
		"schema_id":{"namespace":"omh","name":"heart-rate","version":"2.0"},
		"acquisition_provenance":{"source_name":"test","modality":"sensed"}},
		"body":{"heart_rate":{"value":61,"unit":"beats/min"},"effective_time_frame":{"date_time":"2024-05-01T10:00:00.000Z"}}}`
	if err := v.ValidateDataPoint([]byte(good), "omh:heart-rate:2.0"); err != nil {
		t.Fatalf("valid data point rejected: %v", err)
	}
	for name, bad := range map[string]string{
		"wrong unit":        strings.Replace(good, `"beats/min"`, `"bpm"`, 1),
		"bad date-time":     strings.Replace(good, `"creation_date_time":"2024-05-01T10:00:00.000Z"`, `"creation_date_time":"yesterday"`, 1),
		"no header id":      strings.Replace(good, `"id":"3b4f2c1e-1111-4222-8333-944445555666",`, ``, 1),
		"other schema":      strings.Replace(good, `"name":"heart-rate"`, `"name":"step-count"`, 1),
		"missing time":      strings.Replace(good, `,"effective_time_frame":{"date_time":"2024-05-01T10:00:00.000Z"}`, ``, 1),
		"not a data point":  `{"heart_rate":61}`,
		"bad modality":      strings.Replace(good, `"sensed"`, `"guessed"`, 1),
		"string heart rate": strings.Replace(good, `"value":61`, `"value":"61"`, 1),
	} {
		if bad == good {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		if err := v.ValidateDataPoint([]byte(bad), "omh:heart-rate:2.0"); err == nil {
			t.Errorf("%s: invalid data point accepted", name)
		}
	}
}

// The end-to-end tests below run each example plugin as plugs would: from a
// copy of its tree, built by its manifest's build command, with a rendered
// config.json in $PLUGS_CONFIG, against a real Mosquitto broker on 127.0.0.1
// and against plugs's embedded broker.

const testHost = "test-host"

// pluginRun is what one end-to-end test varies.
type pluginRun struct {
	plug, instance string
	exports        string         // the data format its header must name
	params         map[string]any // the rendered params, secrets included
	secrets        []string       // values that must never be printed or published
}

// runPluginEndToEnd runs the plugin in dir (already built) with argv on each
// broker in turn: it collects n data points from the plugin's data topic,
// validates each, stops the plugin with SIGTERM and checks that it exited 0
// without printing or publishing a secret.
func runPluginEndToEnd(t *testing.T, dir string, argv []string, r pluginRun, n int) {
	t.Helper()
	for _, broker := range []struct {
		name  string
		start func(t *testing.T) (subscriber string, account func(plug, instance string) (string, string))
	}{
		{"mosquitto", func(t *testing.T) (string, func(string, string) (string, string)) {
			brokerURL, _, _ := mqtttest.Mosquitto(t)
			// Mosquitto allows anonymous clients here and ignores the
			// credentials, but the plugin must still carry them, unprinted.
			password := "pw-" + randomHex(t)
			return brokerURL, func(string, string) (string, string) { return "plugs", password }
		}},
		{"embedded", func(t *testing.T) (string, func(string, string) (string, string)) {
			// The daemon's embedded broker: the plugin must log in with its
			// instance's own account and may publish only its data topic.
			auth, err := mqtt.NewAuth([]byte("examples-test-broker-key"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := mqtt.StartEmbedded("127.0.0.1:0", auth, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			user, pw := auth.Reader()
			u, _ := url.Parse(b.URL())
			u.User = url.UserPassword(user, pw)
			return u.String(), auth.Instance
		}},
	} {
		t.Run(broker.name, func(t *testing.T) {
			sub, account := broker.start(t)
			runPluginOn(t, sub, account, dir, argv, r, n)
		})
	}
}

// runPluginOn is runPluginEndToEnd against the broker at subscriber (a URL
// with the subscriber's credentials, if any); account gives the plugin's.
func runPluginOn(t *testing.T, subscriber string, account func(plug, instance string) (string, string), dir string, argv []string, r pluginRun, n int) {
	t.Helper()
	u, err := url.Parse(subscriber)
	if err != nil {
		t.Fatal(err)
	}
	u.User = nil
	brokerURL := u.String()
	host, portText, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}
	username, password := account(r.plug, r.instance)
	r.secrets = append(r.secrets, password)
	topics := map[string]string{
		"data":  fmt.Sprintf("plugs/%s/%s/%s/data", testHost, r.plug, r.instance),
		"state": fmt.Sprintf("plugs/%s/%s/%s/state", testHost, r.plug, r.instance),
	}
	msgs := mqtttest.Subscribe(t, subscriber, "plugs/#")
	config := writeConfig(t, map[string]any{
		"uuid":        "3f9a1c52-8e4b-4d7a-9c61-0b2e5f7d8a" + randomHex(t)[:2],
		"plug":        r.plug,
		"instance":    r.instance,
		"version":     "1.0.0",
		"revision":    "0000000000000000000000000000000000000000",
		"description": "end-to-end test of " + r.plug,
		"broker": map[string]any{
			"url": brokerURL, "host": host, "port": port,
			"username": username, "password": password,
		},
		"topics": topics,
		"params": r.params,
	})
	p := startPlugin(t, dir, argv, config, r.plug, r.instance)

	v := newOMHValidator()
	for got := 0; got < n; {
		select {
		case m := <-msgs:
			for _, s := range r.secrets {
				if bytes.Contains(m.Payload, []byte(s)) {
					t.Fatalf("a secret was published on %s", m.Topic)
				}
			}
			if m.Topic != topics["data"] {
				t.Fatalf("published on %s, want only %s", m.Topic, topics["data"])
			}
			if err := v.ValidateDataPoint(m.Payload, r.exports); err != nil {
				t.Fatalf("data point %d does not validate: %v\n%s", got+1, err, m.Payload)
			}
			got++
		case <-p.exited:
			t.Fatalf("plugin exited early (%v); output:\n%s", p.err, p.output(t))
		case <-time.After(60 * time.Second):
			t.Fatalf("got %d of %d data points; output:\n%s", got, n, p.output(t))
		}
	}

	p.terminate(t)
	out := p.output(t)
	for _, s := range r.secrets {
		if strings.Contains(out, s) {
			t.Errorf("a secret was printed; output:\n%s", out)
		}
	}
	if out == "" {
		t.Error("the plugin logged nothing")
	}
	if strings.Contains(out, "Terminated") {
		t.Errorf("a child's death by SIGTERM leaked into the output:\n%s", out)
	}
}

func TestHeartRate(t *testing.T) {
	t.Parallel()
	dir := buildPlugin(t, "heart-rate")
	// go vet is the plugin's own lint: the root module's go vet skips it.
	if out, err := goCmd(dir, "vet", "./...").CombinedOutput(); err != nil {
		t.Fatalf("go vet: %v\n%s", err, out)
	}
	token := "tok-" + randomHex(t)
	runPluginEndToEnd(t, dir, manifestCommand(t, dir), pluginRun{
		plug: "heart-rate", instance: "patient-17", exports: "omh:heart-rate:2.0",
		params:  map[string]any{"device_id": "A1:B2", "interval": "200ms", "token": token, "baseline_bpm": 64},
		secrets: []string{token},
	}, 3)
}

// TestPluginsRejectBadConfig checks that each plugin refuses a bad config
// with exit status 1 and a message naming every problem, and without
// printing its secrets.
func TestPluginsRejectBadConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		plug   string
		needs  []string
		params map[string]any
		want   []string
	}{
		{"heart-rate", nil, map[string]any{"interval": "soon", "token": "tok-sensitive"},
			[]string{"topics.data is empty", "param device_id is required", `param interval "soon" is not a positive duration`}},
		{"mqtt-shell", []string{"python3", "mosquitto_pub"}, map[string]any{"interval": "soon"},
			[]string{"topics.data is missing"}},
		{"legacy-step-count", []string{"python3", "mosquitto_pub"}, map[string]any{"interval": "5s", "api_key": "tok-sensitive"},
			[]string{"topics.data is missing"}},
	} {
		t.Run(tc.plug, func(t *testing.T) {
			needCommands(t, tc.needs...)
			dir := buildPlugin(t, tc.plug)
			config := writeConfig(t, map[string]any{
				"plug": tc.plug, "instance": "default",
				"broker": map[string]any{"url": "tcp://127.0.0.1:1", "host": "127.0.0.1", "port": 1, "password": "pw-sensitive"},
				"params": tc.params,
			})
			p := startPlugin(t, dir, manifestCommand(t, dir), config, tc.plug, "default")
			err := p.wait()
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
				t.Fatalf("exit = %v, want exit status 1", err)
			}
			out := p.output(t)
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "sensitive") {
				t.Errorf("a secret was printed:\n%s", out)
			}
		})
	}
}

// TestLegacyStepCountSetup runs the setup program of the legacy manifest
// ("config cli command" + "config cli args"), as plugs setup would.
func TestLegacyStepCountSetup(t *testing.T) {
	t.Parallel()
	needCommands(t, "python3", "mosquitto_pub")
	dir := buildPlugin(t, "legacy-step-count")
	var m struct {
		Command string   `json:"config cli command"`
		Args    []string `json:"config cli args"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "plugin.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	config := writeConfig(t, map[string]any{
		"plug": "legacy-step-count", "instance": "default",
		"broker": map[string]any{"host": "127.0.0.1", "port": 1883, "password": "pw-sensitive"},
		"topics": map[string]any{"data": "plugs/h/legacy-step-count/default/data"},
		"params": map[string]any{"interval": "1m", "steps_per_minute": 80, "api_key": "key-sensitive"},
	})
	p := startPlugin(t, dir, append([]string{m.Command}, m.Args...), config, "legacy-step-count", "default")
	if err := p.wait(); err != nil {
		t.Fatalf("setup program: %v\n%s", err, p.output(t))
	}
	out := p.output(t)
	if !strings.Contains(out, "ok: publishing 80 steps/min every 60s to plugs/h/legacy-step-count/default/data") {
		t.Errorf("unexpected setup output:\n%s", out)
	}
	if strings.Contains(out, "sensitive") {
		t.Errorf("a secret was printed:\n%s", out)
	}
}

func TestMQTTShell(t *testing.T) {
	t.Parallel()
	needCommands(t, "python3", "mosquitto_pub")
	dir := buildPlugin(t, "mqtt-shell")
	runPluginEndToEnd(t, dir, manifestCommand(t, dir), pluginRun{
		plug: "mqtt-shell", instance: "default", exports: "omh:body-temperature:3.0",
		params: map[string]any{"interval": "0.2", "location": "oral", "baseline_celsius": 37.1},
	}, 3)
}

func TestLegacyStepCount(t *testing.T) {
	t.Parallel()
	needCommands(t, "python3", "mosquitto_pub")
	dir := buildPlugin(t, "legacy-step-count")
	apiKey := "key-" + randomHex(t)
	runPluginEndToEnd(t, dir, manifestCommand(t, dir), pluginRun{
		plug: "legacy-step-count", instance: "walker-1", exports: "omh:step-count:2.0",
		params:  map[string]any{"interval": "200ms", "steps_per_minute": 120, "api_key": apiKey},
		secrets: []string{apiKey},
	}, 3)
}

// buildPlugin copies examples/plugins/name into a temporary directory, as
// plugs fetch would, and runs the build command of its manifest there.
func buildPlugin(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("plugins", name))); err != nil {
		t.Fatalf("copy plugin: %v", err)
	}
	build := manifestAttr(t, dir, "build")
	if len(build) == 0 {
		return dir
	}
	_ = os.Remove(filepath.Join(dir, name)) // a binary left by a local build
	var cmd *exec.Cmd
	if build[0] == "go" {
		cmd = goCmd(dir, build[1:]...)
	} else {
		cmd = exec.Command(build[0], build[1:]...)
		cmd.Dir = dir
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return dir
}

// goCmd runs the go command of this test in dir, against the module cache,
// with the plugin's own go.mod and go.sum (which must be complete).
func goCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off")
	return cmd
}

// manifestCommand returns the argv the plugin's manifest runs.
func manifestCommand(t *testing.T, dir string) []string {
	t.Helper()
	argv := manifestAttr(t, dir, "command")
	if len(argv) == 0 {
		t.Fatalf("%s: the manifest has no command", dir)
	}
	return argv
}

// manifestAttr reads a list-of-strings attribute of a plugin manifest: build
// or command of plugin.hcl, or "cli command" + "cli args" of a legacy
// plugin.json. It reads only what these tests need; package spec is the real
// decoder.
func manifestAttr(t *testing.T, dir, name string) []string {
	t.Helper()
	if raw, err := os.ReadFile(filepath.Join(dir, "plugin.json")); err == nil {
		var m struct {
			Command string   `json:"cli command"`
			Args    []string `json:"cli args"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("plugin.json: %v", err)
		}
		if name == "command" {
			return append([]string{m.Command}, m.Args...)
		}
		return nil
	}
	f, diags := hclparse.NewParser().ParseHCLFile(filepath.Join(dir, "plugin.hcl"))
	if diags.HasErrors() {
		t.Fatalf("plugin.hcl: %v", diags)
	}
	top, _, diags := f.Body.PartialContent(&hcl.BodySchema{
		Blocks: []hcl.BlockHeaderSchema{{Type: "plugin", LabelNames: []string{"name"}}},
	})
	if diags.HasErrors() || len(top.Blocks) != 1 {
		t.Fatalf("plugin.hcl: want one plugin block: %v", diags)
	}
	content, _, diags := top.Blocks[0].Body.PartialContent(&hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: name}},
	})
	if diags.HasErrors() {
		t.Fatalf("plugin.hcl: %v", diags)
	}
	attr, ok := content.Attributes[name]
	if !ok {
		return nil
	}
	var out []string
	if diags := gohcl.DecodeExpression(attr.Expr, nil, &out); diags.HasErrors() {
		t.Fatalf("plugin.hcl %s: %v", name, diags)
	}
	return out
}

func needCommands(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("%s is not installed (scripts/test-deps.sh installs it)", name)
		}
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// writeConfig writes a config.json like the runner does (mode 0600).
func writeConfig(t *testing.T, config map[string]any) string {
	t.Helper()
	raw, err := json.MarshalIndent(config, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pluginProcess is a plugin run in its own process group, as the runner runs it.
type pluginProcess struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the process has been waited for
	err     error         // Wait's result, once exited is closed
}

// wait returns how the process ended, once it has.
func (p *pluginProcess) wait() error {
	<-p.exited
	return p.err
}

func startPlugin(t *testing.T, dir string, argv []string, config, plug, instance string) *pluginProcess {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "output.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	name := argv[0]
	if strings.Contains(name, "/") {
		name = filepath.Join(dir, name)
	}
	cmd := exec.Command(name, argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLUGS_CONFIG="+config, "PLUGS_PLUG="+plug, "PLUGS_INSTANCE="+instance)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	p := &pluginProcess{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group: no orphans, whatever happened
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("plugin %s did not die after SIGKILL", plug)
		}
	})
	return p
}

// terminate sends SIGTERM to the plugin's process group, as the runner
// does, and requires a clean exit 0. The bound only turns a hang into a
// failure; it is not a performance assertion.
func (p *pluginProcess) terminate(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.exited:
		if err := p.err; err != nil {
			t.Fatalf("after SIGTERM the plugin exited with %v, want 0; output:\n%s", err, p.output(t))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the plugin ignored SIGTERM; output:\n%s", p.output(t))
	}
}

func (p *pluginProcess) output(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDemoDeployment checks that the root plugs.hcl and the manifests of the
// example plugins decode without a diagnostic, warnings included, and that
// every instance's params check against its manifest.
func TestDemoDeployment(t *testing.T) {
	p := spec.NewParser()
	d, diags := p.LoadDeployment(filepath.Join("..", "plugs.hcl"), nil)
	if len(diags) > 0 {
		t.Fatalf("plugs.hcl: %v", diags)
	}
	if d.Broker != nil {
		t.Error("the demo must run on the embedded broker: no broker block")
	}
	want := map[string]struct {
		exports string
		secrets []string
		format  string
	}{
		"heart-rate":        {"omh:heart-rate:2.0", []string{"token"}, spec.FormatHCL},
		"mqtt-shell":        {"omh:body-temperature:3.0", nil, spec.FormatHCL},
		"legacy-step-count": {"omh:step-count:2.0", []string{"api_key"}, spec.FormatMHealth},
	}
	manifests := map[string]*spec.Manifest{}
	for _, plug := range d.Plugs {
		w, ok := want[plug.Name]
		if !ok {
			t.Errorf("unexpected plug %s", plug.Name)
			continue
		}
		m, diags := p.LoadManifest(d.LocalSourceDir(plug))
		if len(diags) > 0 {
			t.Errorf("plug %s manifest: %v", plug.Name, diags)
			continue
		}
		manifests[plug.Name] = m
		if m.Exports != w.exports || m.Format != w.format || len(m.Command) == 0 {
			t.Errorf("plug %s: exports %q format %q command %q; want exports %q format %q and a command",
				plug.Name, m.Exports, m.Format, m.Command, w.exports, w.format)
		}
		var secrets []string
		for name := range spec.SecretParams(m) {
			secrets = append(secrets, name)
		}
		slices.Sort(secrets)
		if !slices.Equal(secrets, w.secrets) {
			t.Errorf("plug %s: secret params %v, want %v", plug.Name, secrets, w.secrets)
		}
	}
	if len(manifests) != len(want) {
		t.Fatalf("decoded %d manifests, want %d", len(manifests), len(want))
	}
	if hr := d.Plug("heart-rate"); hr == nil || len(hr.Instances) != 2 {
		t.Errorf("heart-rate must run two instances (one per patient)")
	}
	if diags := spec.CheckPlugs(d, manifests); len(diags) > 0 {
		t.Errorf("params: %v", diags)
	}
}

// TestSystemdUnit checks that the unit says what the docs promise, and that
// systemd-analyze (when installed) finds nothing wrong in it.
func TestSystemdUnit(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("systemd", "plugs.service"))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(raw)
	for _, want := range []string{
		"Type=notify", "KillMode=mixed", "TimeoutStopSec=", "Restart=on-failure",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/plugs", "PrivateTmp=yes",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"plugs run \\\n    --bundle /var/lib/plugs/current.tar.gz \\\n    --state-dir /var/lib/plugs/state",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("plugs.service lacks %q", want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	// verify insists that ExecStart exists: point it at a binary that does.
	copyPath := filepath.Join(t.TempDir(), "plugs.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(unit, "/usr/local/bin/plugs", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// BenchmarkValidateDataPoint measures the full check of one heart-rate data
// point (envelope, header, body), schemas compiled once.
func BenchmarkValidateDataPoint(b *testing.B) {
	v := newOMHValidator()
	raw := []byte(`{"header":{"id":"3b4f2c1e-1111-4222-8333-944445555666","creation_date_time":"2024-05-01T10:00:00.000Z",
		"schema_id":{"namespace":"omh","name":"heart-rate","version":"2.0"},
		"acquisition_provenance":{"source_name":"bench","modality":"sensed"},"user_id":"patient-17"},
		"body":{"heart_rate":{"value":61,"unit":"beats/min"},"effective_time_frame":{"date_time":"2024-05-01T10:00:00.000Z"}}}`)
	if err := v.ValidateDataPoint(raw, "omh:heart-rate:2.0"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.ValidateDataPoint(raw, "omh:heart-rate:2.0"); err != nil {
			b.Fatal(err)
		}
	}
}
