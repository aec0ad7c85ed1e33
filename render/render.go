package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/redact"
	"github.com/plugs-dev/plugs/spec"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Sensitive is what secret values are replaced with in Redacted configs,
// plans and logs.
const Sensitive = redact.Sensitive

// Plugin is a plug's runnable plugin tree, as the caller (fetch) resolved it.
type Plugin struct {
	Dir      string // the runnable tree: the plugin root, fetched and built
	Source   string
	Version  string // the resolved tag or branch; "" for local sources
	Revision string
	// Manifest is the plug's inline plugin {} block or the tree's manifest.
	Manifest *spec.Manifest
}

// BrokerInfo is the MQTT broker every instance is told about in its config.
type BrokerInfo struct {
	URL      string
	Host     string
	Port     int
	Username string
	// Password is a secret: it appears in Config only, never in Redacted.
	Password string

	// InstanceCredentials, when set, gives each instance its own username
	// and password instead of Username and Password (the embedded broker's
	// accounts, see mqtt.Auth). Added by the daemon helper.
	InstanceCredentials func(id instance.ID) (username, password string)
}

// Desired renders the desired instances of d: one instance.Spec per instance of
// every enabled plug, in declaration order. It is the one place where params
// are merged and type-checked (spec.InstanceParams) and where every default
// of an instance is filled; plugs validate, plan, run and setup all call it. A plug that plugins does not hold
// (not fetched, or not built) or whose params are wrong is reported as a
// diagnostic and left out; the caller decides whether to apply the rest.
func Desired(d *spec.Deployment, plugins map[string]Plugin, broker BrokerInfo) ([]instance.Spec, hcl.Diagnostics) {
	// The plugs' params are merged in declaration order (d.PlugParams marks
	// the deployment's secrets as it goes); the instances' configs, the
	// bulk of the work, are then rendered in parallel (renderAll) and put
	// back in that order with their diagnostics.
	var (
		jobs  []renderJob
		steps []renderStep
	)
	for _, plug := range d.Plugs {
		if !plug.Enabled {
			continue
		}
		plugin, ok := plugins[plug.Name]
		if !ok {
			steps = append(steps, renderStep{job: -1, diags: hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Plugin not available",
				Detail:   fmt.Sprintf("The plugin of plug %q is not fetched or not built; run plugs fetch (or plugs build) first.", plug.Name),
				Subject:  plug.DeclRange.Ptr(),
			}}})
			continue
		}
		m := plugin.Manifest
		if m == nil {
			m = plug.Plugin
		}
		if m == nil {
			steps = append(steps, renderStep{job: -1, diags: hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Missing plugin manifest",
				Detail:   fmt.Sprintf("Plug %q has no plugin {} block and its plugin tree has no plugin.hcl or plugin.json.", plug.Name),
				Subject:  plug.DeclRange.Ptr(),
			}}})
			continue
		}
		if len(m.Command) == 0 {
			steps = append(steps, renderStep{job: -1, diags: hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Plugin has no command",
				Detail:   fmt.Sprintf("The manifest of plug %q declares no command to run; add command = [...] to it.", plug.Name),
				Subject:  plug.DeclRange.Ptr(),
			}}})
			continue
		}
		secrets := spec.SecretParams(m)
		params, pdiags := d.PlugParams(plug, m)
		if len(pdiags) > 0 {
			steps = append(steps, renderStep{job: -1, diags: pdiags})
		}
		for i, inst := range plug.Instances {
			if params[i] == nil {
				continue
			}
			steps = append(steps, renderStep{job: len(jobs)})
			jobs = append(jobs, renderJob{plug: plug, inst: inst, plugin: plugin, m: m, params: params[i], secrets: secrets})
		}
	}
	done := renderAll(d.Host, jobs, broker)
	out := make([]instance.Spec, 0, len(jobs))
	var diags hcl.Diagnostics
	for _, st := range steps {
		diags = append(diags, st.diags...)
		if st.job < 0 {
			continue
		}
		j, r := jobs[st.job], done[st.job]
		if r.err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot render instance config",
				Detail:   fmt.Sprintf("Instance %s/%s: %s.", j.plug.Name, j.inst.Name, r.err),
				Subject:  j.inst.DeclRange.Ptr(),
			})
			continue
		}
		out = append(out, r.spec)
	}
	return out, diags
}

// renderJob is one instance to render, with its merged params.
type renderJob struct {
	plug    *spec.Plug
	inst    *spec.Instance
	plugin  Plugin
	m       *spec.Manifest
	params  map[string]cty.Value
	secrets map[string]bool
}

// renderStep is, in declaration order, a plug's diagnostics or one of its
// instances (an index into the jobs; -1 for none).
type renderStep struct {
	diags hcl.Diagnostics
	job   int
}

type rendered struct {
	spec instance.Spec
	err  error
}

// renderChunk is how many instances one goroutine of renderAll renders:
// below it a goroutine costs more than it saves.
const renderChunk = 64

// renderAll renders every job, in chunks of renderChunk on up to
// GOMAXPROCS goroutines; renderInstance reads its inputs only.
func renderAll(host string, jobs []renderJob, broker BrokerInfo) []rendered {
	out := make([]rendered, len(jobs))
	chunks := (len(jobs) + renderChunk - 1) / renderChunk
	workers := min(runtime.GOMAXPROCS(0), chunks)
	var next atomic.Int64
	work := func() {
		for {
			c := int(next.Add(1)) - 1
			if c >= chunks {
				return
			}
			for i := c * renderChunk; i < min(len(jobs), (c+1)*renderChunk); i++ {
				j := jobs[i]
				out[i].spec, out[i].err = renderInstance(host, j.plug, j.inst, j.plugin, j.m, j.params, j.secrets, broker)
			}
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
	return out
}

// renderInstance builds the instance.Spec of one instance, with its config.json.
func renderInstance(host string, plug *spec.Plug, inst *spec.Instance, plugin Plugin, m *spec.Manifest,
	params map[string]cty.Value, secrets map[string]bool, broker BrokerInfo) (instance.Spec, error) {
	id := instance.ID{Plug: plug.Name, Instance: inst.Name}
	version := plugin.Version
	if version == "" {
		version = m.Version
	}
	if broker.InstanceCredentials != nil {
		broker.Username, broker.Password = broker.InstanceCredentials(id)
	}
	doc := configDoc{
		UUID:        instanceUUID(host, id, m.UUID),
		Plug:        id.Plug,
		Instance:    id.Instance,
		Version:     version,
		Revision:    plugin.Revision,
		Description: m.Description,
		Plugin:      configPlugin{UUID: m.UUID, Name: m.Name, Version: m.Version, Description: m.Description},
		Broker: configBroker{
			URL: broker.URL, Host: broker.Host, Port: broker.Port,
			Username: broker.Username, Password: broker.Password,
		},
		Topics: configTopics{
			Data:  TopicPrefix(host, id) + "/data",
			State: TopicPrefix(host, id) + "/state",
		},
		Params: make(map[string]json.RawMessage, len(params)),
	}
	redactedParams := make(map[string]json.RawMessage, len(params))
	sensitive, _ := json.Marshal(Sensitive)
	for name, v := range params {
		raw, err := ctyjson.Marshal(v, v.Type())
		if err != nil {
			// Never include the value: it may be a secret.
			return instance.Spec{}, fmt.Errorf("param %s: %w", name, err)
		}
		doc.Params[name] = raw
		redactedParams[name] = raw
		if secrets[name] {
			redactedParams[name] = sensitive
		}
	}
	config, err := marshalConfig(doc)
	if err != nil {
		return instance.Spec{}, err
	}
	doc.Params = redactedParams
	if doc.Broker.Password != "" {
		doc.Broker.Password = Sensitive
	}
	redacted, err := marshalConfig(doc)
	if err != nil {
		return instance.Spec{}, err
	}
	sum := sha256.Sum256(config)

	return instance.Spec{
		ID:          id,
		UUID:        doc.UUID,
		Version:     version,
		Revision:    plugin.Revision,
		Source:      plugin.Source,
		Plugin:      instance.PluginIdentity{UUID: m.UUID, Name: m.Name, Version: m.Version, Description: m.Description},
		Dir:         plugin.Dir,
		Command:     slices.Clone(m.Command),
		Env:         maps.Clone(plug.Env),
		Config:      config,
		ConfigHash:  hex.EncodeToString(sum[:]),
		Redacted:    redacted,
		DependsOn:   slices.Clone(plug.DependsOn),
		StopSignal:  m.StopSignal,
		StopTimeout: StopTimeout(plug.StopTimeout),
		Restart:     RestartPolicy(plug.Restart),
		User:        plug.User,
		Group:       plug.Group,
		Limits:      instance.Limits(plug.InstanceLimits(inst)),
		Permissions: append(slices.Clone(m.Permissions), plug.Sandbox.Permissions...),
		Groups:      slices.Clone(plug.Sandbox.Groups),
		NoSandbox:   plug.Sandbox.Disabled,
		BrokerPort:  broker.Port,
		Task:        Task(plug, m), // render/task.go

		Hooks:         Hooks(plug, m), // render/hooks.go
		SetupRequired: m.SetupRequired,
		Update:        Update(plug), // render/update.go
	}, nil
}

// TopicPrefix is the MQTT topic prefix of an instance: plugs/<host>/<plug>/<instance>.
func TopicPrefix(host string, id instance.ID) string {
	return "plugs/" + host + "/" + id.Plug + "/" + id.Instance
}

// instanceUUID is a name-based (v5) UUID: of the instance name within the
// manifest's uuid when it has one, else of host/plug/instance. Both are
// stable across runs and hosts' restarts.
func instanceUUID(host string, id instance.ID, manifestUUID string) string {
	if manifestUUID != "" {
		ns, err := parseUUID(manifestUUID)
		if err != nil {
			// Not a UUID: still derive a stable one from it.
			ns = newSHA1UUID(plugsNamespace, manifestUUID)
		}
		return newSHA1UUID(ns, id.Instance).String()
	}
	return newSHA1UUID(plugsNamespace, host+"/"+id.Plug+"/"+id.Instance).String()
}

// StopTimeout is the stop timeout of a plug that sets d: d itself, or
// spec.DefaultStopTimeout when d is zero (unset: plugs.hcl refuses 0s).
func StopTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return spec.DefaultStopTimeout
	}
	return d
}

// RestartPolicy is the restart policy of a plug's restart block p, with each
// unset (zero) duration set to its default (spec's WithDefaults, the one
// definition of them, which spec's own check of the block also uses).
// MaxRestarts 0 is its own default: never give up.
func RestartPolicy(p spec.RestartPolicy) instance.RestartPolicy {
	return instance.RestartPolicy(p.WithDefaults())
}

// configDoc is config.json. Field order is the order written; params are
// written with sorted keys (encoding/json sorts maps).
type configDoc struct {
	UUID        string                     `json:"uuid"`
	Plug        string                     `json:"plug"`
	Instance    string                     `json:"instance"`
	Version     string                     `json:"version"`
	Revision    string                     `json:"revision"`
	Description string                     `json:"description"`
	Plugin      configPlugin               `json:"plugin"`
	Broker      configBroker               `json:"broker"`
	Topics      configTopics               `json:"topics"`
	Params      map[string]json.RawMessage `json:"params"`
}

// configPlugin is the plugin's own identity from its manifest.
type configPlugin struct {
	UUID        string `json:"uuid,omitempty"`
	Name        string `json:"name"`
	Version     string `json:"version,omitempty"`
	Description string `json:"description,omitempty"`
}

type configBroker struct {
	URL      string `json:"url"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username"`
	Password string `json:"password"`
}

type configTopics struct {
	Data  string `json:"data"`
	State string `json:"state"`
}

// marshalConfig writes doc as indented JSON with a final newline.
func marshalConfig(doc configDoc) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return buf.Bytes(), nil
}
