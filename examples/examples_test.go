package examples

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// omhBase is the canonical URL prefix of the Open mHealth schemas; the copies
// in testdata/omh/schema are served under it, so no schema is fetched.
const omhBase = "https://w3id.org/openmhealth/schemas/omh/"

// omhLoader serves omhBase URLs from a folder and refuses everything else.
type omhLoader struct{ dir string }

func (l omhLoader) Load(url string) (any, error) {
	name, ok := strings.CutPrefix(url, omhBase)
	if !ok || name == "" || strings.ContainsAny(name, `/\`) {
		return nil, fmt.Errorf("schema %s is not in testdata/omh/schema (the tests never use the network)", url)
	}
	f, err := os.Open(filepath.Join(l.dir, name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

// omhValidator validates Open mHealth data points against the copied schemas.
type omhValidator struct {
	mu       sync.Mutex
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
}

func newOMHValidator() *omhValidator {
	c := jsonschema.NewCompiler()
	c.UseLoader(omhLoader{dir: filepath.Join("testdata", "omh", "schema")})
	c.AssertFormat() // date-time values must be RFC 3339, as the schemas say
	return &omhValidator{compiler: c, schemas: map[string]*jsonschema.Schema{}}
}

// schema compiles (once) the schema omh:name:version.
func (v *omhValidator) schema(name, version string) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	url := omhBase + name + "-" + version + ".json"
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

// validate checks doc (raw JSON) against the schema omh:name:version.
func (v *omhValidator) validate(raw []byte, name, version string) error {
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

// validateDataPoint checks a whole data point: the envelope against
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
					err = v.validate(raw, schema.name, schema.version)
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
	if err := v.validateDataPoint([]byte(good), "omh:heart-rate:2.0"); err != nil {
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
		if err := v.validateDataPoint([]byte(bad), "omh:heart-rate:2.0"); err == nil {
			t.Errorf("%s: invalid data point accepted", name)
		}
	}
}
