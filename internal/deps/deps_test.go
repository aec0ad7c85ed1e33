package deps_test

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/plugs-dev/plugs/"

// The dependency groups a rule can forbid. A prefix ending in "/" matches
// every package below it; any other entry matches one package.
var (
	// parser is plugs.hcl and its value system.
	parser = []string{module + "spec", "github.com/hashicorp/hcl/", "github.com/zclconf/go-cty/"}
	// effects spawn processes, open connections, or talk git, Prometheus or MQTT.
	effects = []string{"os/exec", "net", "net/http", "github.com/go-git/", "github.com/prometheus/",
		"github.com/eclipse/paho.mqtt.golang", "github.com/eclipse/paho.golang/", "github.com/mochi-mqtt/", "github.com/fsnotify/",
		module + "fetch", module + "runner", module + "daemon", module + "mqtt", module + "metrics"}
	// cli is the command line's libraries.
	cli = []string{"github.com/spf13/"}
)

// rules says, for each package of the module, which groups it must not
// depend on (directly or not). Every package of the module must have a row,
// so that a new package is placed on purpose.
var rules = map[string][][]string{
	"instance":                 {parser, effects, cli, {module}}, // stdlib only (and itself, see below)
	"spec":                     {effects, cli},
	"render":                   {effects, cli},
	"reconcile":                {parser, effects, cli},
	"reconcile/reconciletest":  {parser, cli},
	"runner":                   {parser, cli, {module + "reconcile", module + "render", module + "fetch", module + "daemon"}},
	"metrics":                  {parser, cli, {module + "reconcile", module + "render", module + "runner", module + "daemon"}},
	"mqtt":                     {parser, cli, {module + "reconcile", module + "render", module + "runner", module + "daemon"}},
	"sandbox":                  {parser, cli, {module + "reconcile", module + "render", module + "runner", module + "fetch", module + "daemon"}},
	"health":                   {parser, cli, {module + "reconcile", module + "render", module + "runner", module + "fetch", module + "daemon", module + "mqtt", module + "metrics"}},
	"sandbox/cgroup":           {parser, effects, cli, {module}},
	"task":                     {parser, cli, {module + "reconcile", module + "render", module + "runner", module + "fetch", module + "daemon", module + "metrics", module + "mqtt"}},
	"sandbox/perms":            {parser, effects, cli, {module}},
	"fetch":                    {cli, {module + "reconcile", module + "render", module + "runner", module + "daemon"}},
	"daemon":                   {cli},
	"api":                      {parser, cli, {"os/exec", "github.com/go-git/", "github.com/prometheus/", "github.com/eclipse/paho.mqtt.golang", "github.com/mochi-mqtt/", "github.com/fsnotify/", module + "spec", module + "fetch", module + "runner", module + "daemon", module + "mqtt", module + "metrics", module + "reconcile", module + "render", module + "workspace"}}, // the wire types and the client: stdlib, net/http and nothing of plugs
	"api/hcldiag":              {cli, {"os/exec", module + "spec", module + "fetch", module + "runner", module + "daemon", module + "mqtt", module + "metrics", module + "reconcile"}},
	"ui":                       {parser, cli, {module + "reconcile", module + "runner", module + "fetch", module + "daemon", module + "mqtt"}},
	"cmd/plugs":                {},
	"internal/deps":            {},
	"internal/gittest":         {cli},
	"internal/mqtttest":        {cli},
	"internal/omh":             {cli},
	"internal/promtest":        {cli},
	"internal/syncbuf":         {parser, effects, cli},
	"internal/tlstest":         {parser, cli, {module, "os/exec", "github.com/"}}, // the standard library only (crypto, net.ParseIP, files)
	"internal/redact":          {parser, effects, cli, {module}},
	"internal/source":          {parser, effects, cli},
	"internal/layout":          {parser, effects, cli, {module}},
	"internal/testplugin":      {parser, cli, {module}}, // the fake plugin of the tests: stdlib, go-systemd and goleak, nothing of plugs
	"internal/clock":           {parser, effects, cli, {module}},
	"internal/clock/clocktest": {parser, effects, cli, {module + "runner", module + "health", module + "task", module + "reconcile"}},
	"internal/atomicfile":      {parser, effects, cli, {module}},
	"internal/webserve":        {parser, cli, {module}}, // net/http and exporter-toolkit, nothing of plugs
	"internal/signame":         {parser, effects, cli, {module}},
	"internal/brokerurl":       {parser, effects, cli},
	"internal/names":           {parser, effects, cli, {module}},
	"internal/exepages":        {parser, effects, cli, {module}}, // the standard library and x/sys/unix
	"workspace":                {cli, {module + "runner", module + "daemon", module + "reconcile"}},
	"internal/browsertest":     {parser, cli},
	"bench/baseline":           {},
	"bench/pageout":            {},
	"bench/sidebyside":         {},
	"chaos":                    {},
	"e2e":                      {},
	"examples":                 {},
}

func matches(dep string, group []string) bool {
	for _, g := range group {
		if dep == g || strings.HasSuffix(g, "/") && strings.HasPrefix(dep, g) {
			return true
		}
	}
	return false
}

// TestDependencies checks every package of the module against its row.
func TestDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.Command(gobin, "list", "-deps=false", "-json=ImportPath,Deps", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := map[string]bool{}
	for dec.More() {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, module)
		seen[name] = true
		groups, ok := rules[name]
		if !ok {
			t.Errorf("package %s has no row in rules: say what it may depend on", name)
			continue
		}
		if name == "cmd/plugs" && !slices.ContainsFunc(p.Deps, func(d string) bool { return matches(d, parser) }) {
			t.Errorf("go list gave cmd/plugs no HCL among %d deps: the listing is not transitive", len(p.Deps))
		}
		for _, dep := range p.Deps {
			for _, g := range groups {
				if dep != p.ImportPath && matches(dep, g) {
					t.Errorf("%s depends on %s", name, dep)
				}
			}
		}
	}
	for name := range rules {
		if !seen[name] {
			t.Errorf("rules name %s, which go list does not know", name)
		}
	}
}
