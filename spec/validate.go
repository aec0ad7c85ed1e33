package spec

import (
	"fmt"
	"os"

	"github.com/hashicorp/hcl/v2"
	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/plugs-dev/plugs/internal/source"
)

// Validation is everything plugs validate decoded.
type Validation struct {
	Deployment *Deployment
	Lock       *Lock                // nil when there is no lock file
	Manifests  map[string]*Manifest // by plug name, those that could be reached
}

// Validate decodes the deployment, its lock file when there is one, and
// every manifest it can reach (see LoadManifests), then checks the params
// of every instance against them.
func (p *Parser) Validate(filename string, vars map[string]string, stateDir string) (*Validation, hcl.Diagnostics) {
	v, diags := p.validate(filename, vars, stateDir)
	return v, p.secrets.finish(diags)
}

// validate is Validate before finish (see output.go).
func (p *Parser) validate(filename string, vars map[string]string, stateDir string) (*Validation, hcl.Diagnostics) {
	d, diags := p.LoadDeployment(filename, vars)
	v := &Validation{Deployment: d}
	if d == nil {
		return v, diags
	}
	lockFile := LockFilename(filename)
	if _, err := os.Stat(lockFile); err == nil {
		l, ldiags := p.LoadLock(lockFile)
		diags = append(diags, ldiags...)
		if l != nil && !ldiags.HasErrors() {
			v.Lock = l
			diags = append(diags, CheckLock(d, l)...)
		}
	}
	var mdiags hcl.Diagnostics
	v.Manifests, mdiags = p.LoadManifests(d, v.Lock, stateDir)
	diags = append(diags, mdiags...)
	diags = append(diags, CheckPlugs(d, v.Manifests)...)
	return v, diags
}

// LoadManifests finds the manifest of every plug it can without the
// network: the inline plugin block, a local folder source, or the fetched
// tree <stateDir>/plugins/<plug>/<revision>/ of the locked revision. A plug
// whose manifest is not fetched yet gets a warning; l and stateDir may be
// nil and "".
func (p *Parser) LoadManifests(d *Deployment, l *Lock, stateDir string) (map[string]*Manifest, hcl.Diagnostics) {
	m, diags := p.loadManifests(d, l, stateDir)
	return m, p.secrets.finish(diags)
}

// loadManifests is LoadManifests before finish (see output.go).
func (p *Parser) loadManifests(d *Deployment, l *Lock, stateDir string) (map[string]*Manifest, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	out := map[string]*Manifest{}
	for _, plug := range d.Plugs {
		if plug.Plugin != nil {
			out[plug.Name] = plug.Plugin
			continue
		}
		if plug.Source == "" {
			continue // already diagnosed
		}
		src, err := source.Parse(plug.Source, d.BaseDir)
		if err != nil {
			continue // diagnosed at decode time
		}
		var dir string
		switch src.Kind {
		case source.Dir:
			if st, err := os.Stat(src.Location); err != nil || !st.IsDir() {
				diags = append(diags, errorf(plug.SourceRange, "Plugin source not found",
					"The folder %s does not exist. Check the source path: it is relative to the folder of plugs.hcl.", src.Location))
				continue
			}
			dir = src.Location
		case source.Archive:
			if st, err := os.Stat(src.Location); err != nil || st.IsDir() {
				diags = append(diags, errorf(plug.SourceRange, "Plugin source not found",
					"The archive %s does not exist. Check the source path: it is relative to the folder of plugs.hcl.", src.Location))
				continue
			}
		}
		// An archive or a repository: its manifest is in the fetched tree.
		if lp := lockEntry(l, plug.Name); dir == "" && lp != nil && stateDir != "" {
			dir = layout.PluginTree(stateDir, plug.Name, lp.Revision)
			if _, err := os.Stat(dir); err != nil {
				dir = ""
			}
		}
		if dir == "" {
			diags = append(diags, warnf(plug.SourceRange, "Manifest not fetched yet",
				"The manifest of plug %q cannot be checked until its source is fetched, so its params were not checked; run plugs fetch.", plug.Name))
			continue
		}
		m, mdiags := p.LoadManifest(dir)
		for _, diag := range mdiags {
			if diag.Subject == nil {
				diag.Subject = plug.SourceRange.Ptr()
				diag.Detail = fmt.Sprintf("Plug %q: %s", plug.Name, diag.Detail)
			}
		}
		diags = append(diags, mdiags...)
		if m != nil && !mdiags.HasErrors() {
			out[plug.Name] = m
			diags = append(diags, p.CheckRunnable(dir, m, plug.SourceRange)...)
		}
	}
	return out, diags
}

func lockEntry(l *Lock, name string) *LockedPlug {
	if l == nil {
		return nil
	}
	return l.Plugs[name]
}
