package fetch

import (
	"errors"

	"github.com/plugs-dev/plugs/spec"
)

// loadManifest reads a tree's plugin.hcl or plugin.json with the spec parser.
func loadManifest(dir string) (*spec.Manifest, error) {
	m, diags := spec.NewParser().LoadManifest(dir)
	if diags.HasErrors() {
		return nil, errors.New(diags.Error())
	}
	return m, nil
}
