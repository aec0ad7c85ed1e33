package e2e

import (
	"path/filepath"

	"github.com/plugs-dev/plugs/internal/omh"
)

// newOMHValidator validates against the Open mHealth schemas the examples ship.
func newOMHValidator() *omh.Validator {
	return omh.NewValidator(filepath.Join("..", "examples", "testdata", "omh", "schema"))
}
