// Package omh validates Open mHealth data points against a local copy of
// the Open mHealth JSON schemas (examples/testdata/omh/schema), without
// touching the network. The example-plugin and end-to-end tests share it.
package omh

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Base is the canonical URL prefix of the Open mHealth schemas; the local
// copies are served under it.
const Base = "https://w3id.org/openmhealth/schemas/omh/"

// loader serves Base URLs from a folder and refuses everything else.
type loader struct{ dir string }

func (l loader) Load(url string) (any, error) {
	name, ok := strings.CutPrefix(url, Base)
	if !ok || name == "" || strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("schema %s is not in %s (validation never uses the network)", url, l.dir)
	}
	f, err := os.Open(filepath.Join(l.dir, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

// Validator validates Open mHealth documents; it is safe for concurrent use.
type Validator struct {
	mu       sync.Mutex
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
}

// NewValidator returns a validator over the schemas in dir.
func NewValidator(dir string) *Validator {
	c := jsonschema.NewCompiler()
	c.UseLoader(loader{dir: dir})
	c.AssertFormat() // date-time values must be RFC 3339, as the schemas say
	return &Validator{compiler: c, schemas: map[string]*jsonschema.Schema{}}
}

// schema compiles (once) the schema omh:name:version.
func (v *Validator) schema(name, version string) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	url := Base + name + "-" + version + ".json"
	if s, ok := v.schemas[url]; ok {
		return s, nil
	}
	s, err := v.compiler.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", url, err)
	}
	v.schemas[url] = s
	return s, nil
}

// Validate checks raw JSON against the schema omh:name:version.
func (v *Validator) Validate(raw []byte, name, version string) error {
	s, err := v.schema(name, version)
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return s.Validate(doc)
}

// ValidateDataPoint checks a whole data point: the envelope against
// data-point-1.0, the header against header-1.2, and the body against the
// schema the header names, which must be want (e.g. "omh:heart-rate:2.0").
func (v *Validator) ValidateDataPoint(raw []byte, want string) error {
	if err := v.Validate(raw, "data-point", "1.0"); err != nil {
		return fmt.Errorf("data point: %w", err)
	}
	var dp struct {
		Header json.RawMessage `json:"header"`
		Body   json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(raw, &dp); err != nil {
		return fmt.Errorf("decode data point: %w", err)
	}
	if err := v.Validate(dp.Header, "header", "1.2"); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	var h struct {
		SchemaID struct{ Namespace, Name, Version string } `json:"schema_id"`
	}
	if err := json.Unmarshal(dp.Header, &h); err != nil {
		return fmt.Errorf("decode header: %w", err)
	}
	id := h.SchemaID
	if got := id.Namespace + ":" + id.Name + ":" + id.Version; got != want {
		return fmt.Errorf("header.schema_id is %s, want %s", got, want)
	}
	if err := v.Validate(dp.Body, id.Name, id.Version); err != nil {
		return fmt.Errorf("body (%s-%s): %w", id.Name, id.Version, err)
	}
	return nil
}
