package fetch

import (
	"github.com/plugs-dev/plugs/spec"
)

// loadManifest reads a tree's plugin.hcl or plugin.json with the spec
// parser, when Options.LoadManifest is nil (the workspace passes its own,
// one parser for every file of a deployment). Its error is the
// hcl.Diagnostics themselves, not flattened, so that a caller can show
// them as diagnostics (errors.As).
func loadManifest(dir string) (*spec.Manifest, error) {
	m, diags := spec.NewParser().LoadManifest(dir)
	if diags.HasErrors() {
		return nil, diags
	}
	return m, nil
}
