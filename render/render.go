package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
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
	var (
		out   []instance.Spec
		diags hcl.Diagnostics
	)
	for _, plug := range d.Plugs {
		if !plug.Enabled {
			continue
		}
		plugin, ok := plugins[plug.Name]
		if !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Plugin not available",
				Detail:   fmt.Sprintf("The plugin of plug %q is not fetched or not built; run plugs fetch (or plugs build) first.", plug.Name),
				Subject:  plug.DeclRange.Ptr(),
			})
			continue
		}
		m := plugin.Manifest
		if m == nil {
			m = plug.Plugin
		}
		if m == nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing plugin manifest",
				Detail:   fmt.Sprintf("Plug %q has no plugin {} block and its plugin tree has no plugin.hcl or plugin.json.", plug.Name),
				Subject:  plug.DeclRange.Ptr(),
			})
			continue
		}
		if len(m.Command) == 0 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Plugin has no command",
				Detail:   fmt.Sprintf("The manifest of plug %q declares no command to run; add command = [...] to it.", plug.Name),
				Subject:  plug.DeclRange.Ptr(),
			})
			continue
		}
		secrets := spec.SecretParams(m)
		params, pdiags := d.PlugParams(plug, m)
		diags = append(diags, pdiags...)
		for i, inst := range plug.Instances {
			if params[i] == nil {
				continue
			}
			is, err := renderInstance(d.Host, plug, inst, plugin, m, params[i], secrets, broker)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Cannot render instance config",
					Detail:   fmt.Sprintf("Instance %s/%s: %s.", plug.Name, inst.Name, err),
					Subject:  inst.DeclRange.Ptr(),
				})
				continue
			}
			out = append(out, is)
		}
	}
	return out, diags
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
