package spec

import (
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/plugs-dev/plugs/internal/redact"
)

// LockFileName is the name of the lock file beside plugs.hcl.
const LockFileName = layout.LockFileName

// LockFilename is the lock file of the deployment file deploymentFile.
func LockFilename(deploymentFile string) string {
	return layout.LockFile(deploymentFile)
}

var sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

var lockFileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{{Type: "plug", LabelNames: []string{"name"}}},
}

var lockedPlugSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "source", Required: true},
		{Name: "constraint"},
		{Name: "version"},
		{Name: "revision", Required: true},
		{Name: "hash", Required: true},
		{Name: "sha256"},
	},
}

// LoadLock reads and decodes a plugs.lock.hcl. A missing file is an error:
// callers that accept one check with os.Stat first.
func (p *Parser) LoadLock(filename string) (*Lock, hcl.Diagnostics) {
	src, diags := p.readFile(filename, "lock file")
	if diags.HasErrors() {
		return nil, diags
	}
	return p.ParseLock(src, filename)
}

// ParseLock decodes plugs.lock.hcl source read from filename.
func (p *Parser) ParseLock(src []byte, filename string) (*Lock, hcl.Diagnostics) {
	l, diags := p.parseLock(src, filename)
	return l, p.secrets.finish(diags)
}

// parseLock is ParseLock before finish (see output.go).
func (p *Parser) parseLock(src []byte, filename string) (*Lock, hcl.Diagnostics) {
	f, diags := p.parseHCL(src, filename)
	if diags.HasErrors() {
		return nil, diags
	}
	l := &Lock{Filename: filename, Plugs: map[string]*LockedPlug{}}
	content, cdiags := bodyContent(f.Body, lockFileSchema)
	diags = append(diags, cdiags...)
	dc := &decoder{p: p, baseDir: filepath.Dir(filename)}
	for _, b := range content.Blocks {
		if prev, dup := l.Plugs[b.Labels[0]]; dup {
			diags = append(diags, errorf(b.LabelRanges[0], "Duplicate plug block",
				"The lock file already has an entry for %q at %s. Run plugs lock to rewrite it.", b.Labels[0], prev.DeclRange))
			continue
		}
		lp, bdiags := dc.lockedPlug(b)
		diags = append(diags, bdiags...)
		l.Plugs[lp.Name] = lp
	}
	return l, diags
}

// lockedPlug decodes one plug block of a lock file.
func (dc *decoder) lockedPlug(b *hcl.Block) (*LockedPlug, hcl.Diagnostics) {
	lp := &LockedPlug{Name: b.Labels[0], DeclRange: b.DefRange}
	bc, diags := bodyContent(b.Body, lockedPlugSchema)
	for name, dst := range map[string]*string{"source": &lp.Source, "constraint": &lp.Constraint, "version": &lp.Version, "revision": &lp.Revision, "hash": &lp.Hash, "sha256": &lp.SHA256} {
		if attr, ok := bc.Attributes[name]; ok {
			s, _, sdiags := dc.evalString(attr)
			*dst, diags = s, append(diags, sdiags...)
		}
	}
	if attr, ok := bc.Attributes["hash"]; ok && lp.Hash != "" && !strings.HasPrefix(lp.Hash, "h2:") && !strings.HasPrefix(lp.Hash, "h1:") {
		diags = append(diags, errorf(attr.Expr.Range(), "Invalid lock hash",
			"The hash must be an h2: (or, from older plugs, h1:) tree hash, as plugs lock writes it. Run plugs lock to rewrite the lock file."))
	}
	if attr, ok := bc.Attributes["sha256"]; ok && !sha256RE.MatchString(lp.SHA256) {
		diags = append(diags, errorf(attr.Expr.Range(), "Invalid lock sha256",
			"The sha256 must be 64 lower-case hex digits, as plugs lock writes it. Run plugs lock to rewrite the lock file."))
	}
	if attr, ok := bc.Attributes["revision"]; ok && (lp.Revision == "" || strings.ContainsAny(lp.Revision, "/\\") || lp.Revision == "." || lp.Revision == "..") {
		diags = append(diags, errorf(attr.Expr.Range(), "Invalid lock revision",
			"The revision must be a commit id or a content id. Run plugs lock to rewrite the lock file."))
	}
	return lp, diags
}

// CheckLock compares the lock with the deployment: entries whose source or
// constraint no longer match plugs.hcl, plugs without an entry and entries
// without a plug are warnings (plugs lock fixes them).
func CheckLock(d *Deployment, l *Lock) hcl.Diagnostics {
	return d.secretSet().finish(checkLock(d, l))
}

// checkLock is CheckLock before finish (see output.go).
func checkLock(d *Deployment, l *Lock) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, plug := range d.Plugs {
		lp, ok := l.Plugs[plug.Name]
		switch {
		case !ok:
			diags = append(diags, warnf(plug.DeclRange, "Plug not locked",
				"The lock file %s has no entry for the plug %q. Run plugs lock to add it.", l.Filename, plug.Name))
		case !sameLockedSource(lp.Source, plug.Source):
			diags = append(diags, warnf(plug.SourceRange, "Lock entry out of date",
				"The lock file pins the plug %q to the source %q, but plugs.hcl now says %q. Run plugs lock to update it.", plug.Name, redact.Source(lp.Source), redact.Source(plug.Source)))
		case lp.Constraint != plug.Version:
			diags = append(diags, warnf(plug.VersionRange, "Lock entry out of date",
				"The lock file resolved the plug %q for the version %q, but plugs.hcl now says %q. Run plugs lock to update it.", plug.Name, lp.Constraint, plug.Version))
		}
	}
	for _, name := range sortedKeys(l.Plugs) {
		if d.Plug(name) == nil {
			diags = append(diags, warnf(l.Plugs[name].DeclRange, "Lock entry for an undeclared plug",
				"The lock file has an entry for %q, which plugs.hcl no longer declares. Run plugs lock to remove it.", name))
		}
	}
	return diags
}

// sameLockedSource reports whether a lock entry's source is the one plugs.hcl
// says. The lock holds sources without their credentials (fetch writes them
// through redact.Text), so both sides are compared without: a source that
// carries user:token@ is not out of date against its own entry.
func sameLockedSource(locked, declared string) bool {
	return redact.Text(locked) == redact.Text(declared)
}
