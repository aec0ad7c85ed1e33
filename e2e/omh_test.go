package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// omhBase is the canonical URL prefix of the Open mHealth schemas; the
// copies in examples/testdata/omh/schema are served under it, so no schema
// is fetched from the network.
const omhBase = "https://w3id.org/openmhealth/schemas/omh/"

// omhSchemaDir holds the Open mHealth schemas the examples ship.
var omhSchemaDir = filepath.Join("..", "examples", "testdata", "omh", "schema")

// omhLoader serves omhBase URLs from a folder and refuses everything else.
type omhLoader struct{ dir string }

func (l omhLoader) Load(url string) (any, error) {
	name, ok := strings.CutPrefix(url, omhBase)
	if !ok || name == "" || strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("schema %s is not among the copied Open mHealth schemas", url)
	}
	f, err := os.Open(filepath.Join(l.dir, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

// omhValidator validates Open mHealth data points; it is used by one
// goroutine at a time.
type omhValidator struct {
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
}

func newOMHValidator() *omhValidator {
	c := jsonschema.NewCompiler()
	c.UseLoader(omhLoader{dir: omhSchemaDir})
	c.AssertFormat() // date-time values must be RFC 3339, as the schemas say
	return &omhValidator{compiler: c, schemas: map[string]*jsonschema.Schema{}}
}

// validate checks raw JSON against the schema omh:name:version.
func (v *omhValidator) validate(raw []byte, name, version string) error {
	url := omhBase + name + "-" + version + ".json"
	s, ok := v.schemas[url]
	if !ok {
		var err error
		if s, err = v.compiler.Compile(url); err != nil {
			return fmt.Errorf("compile %s: %w", url, err)
		}
		v.schemas[url] = s
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return s.Validate(doc)
}

// validateDataPoint checks a data point: the envelope against
// data-point-1.0, the header against header-1.2, and the body against the
// schema the header names, which must be want (e.g. "omh:heart-rate:2.0").
func (v *omhValidator) validateDataPoint(raw []byte, want string) error {
	if err := v.validate(raw, "data-point", "1.0"); err != nil {
		return fmt.Errorf("data point: %w", err)
	}
	var dp struct {
		Header json.RawMessage `json:"header"`
		Body   json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(raw, &dp); err != nil {
		return fmt.Errorf("decode data point: %w", err)
	}
	if err := v.validate(dp.Header, "header", "1.2"); err != nil {
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
	if err := v.validate(dp.Body, id.Name, id.Version); err != nil {
		return fmt.Errorf("body (%s-%s): %w", id.Name, id.Version, err)
	}
	return nil
}
