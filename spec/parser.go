package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
)

// Parser reads plugs.hcl, plugin manifests and plugs.lock.hcl, and keeps the
// source of every file it read so that diagnostics can be rendered with
// snippets. Unlike hclparse.Parser it never serves a stale cached copy: each
// Load re-reads its file. A Parser is not safe for concurrent use.
type Parser struct {
	files map[string]*hcl.File

	// Hostname returns the default host of a deployment that sets none.
	Hostname func() (string, error)
	// Getenv backs the env() function; nil means os.Getenv.
	Getenv func(string) string
}

// NewParser returns a Parser using the machine's hostname and environment.
func NewParser() *Parser {
	return &Parser{files: map[string]*hcl.File{}, Hostname: os.Hostname, Getenv: os.Getenv}
}

// Files returns every file read so far, by filename, for rendering diagnostics.
func (p *Parser) Files() map[string]*hcl.File {
	return p.files
}

// readFile reads filename, turning a failure into a diagnostic.
func (p *Parser) readFile(filename, what string) ([]byte, hcl.Diagnostics) {
	src, err := os.ReadFile(filename)
	if err != nil {
		summary, detail := "Failed to read file", fmt.Sprintf("The %s %q could not be read: %s.", what, filename, err)
		if os.IsNotExist(err) {
			summary = "File not found"
			detail = fmt.Sprintf("The %s %q does not exist. Check the path, or create it.", what, filename)
		}
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: summary, Detail: detail}}
	}
	return src, nil
}

// parseHCL parses src as native HCL syntax and remembers the file.
func (p *Parser) parseHCL(src []byte, filename string) (*hcl.File, hcl.Diagnostics) {
	if diags := checkNestingHCL(src, filename); diags != nil {
		return nil, diags
	}
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if f != nil {
		p.files[filename] = f
	}
	return f, diags
}

// parseJSON parses src as HCL's JSON syntax and remembers the file.
func (p *Parser) parseJSON(src []byte, filename string) (*hcl.File, hcl.Diagnostics) {
	if diags := checkNestingJSON(src, filename); diags != nil {
		return nil, diags
	}
	f, diags := hcljson.Parse(src, filename)
	if f != nil {
		p.files[filename] = f
	}
	return f, diags
}

// IsLocalSource reports whether a plug source is a path on this machine
// (./dir, ../dir, /abs/dir) rather than a git repository or a URL.
func IsLocalSource(source string) bool {
	return strings.HasPrefix(source, "./") || strings.HasPrefix(source, "../") ||
		strings.HasPrefix(source, "/") || source == "." || source == ".."
}

// IsArchiveSource reports whether a plug source names an archive file
// (.zip, .tar.gz, .tgz, .tar), local or remote.
func IsArchiveSource(source string) bool {
	s := strings.ToLower(source)
	for _, ext := range []string{".zip", ".tar.gz", ".tgz", ".tar"} {
		if strings.HasSuffix(s, ext) {
			return true
		}
	}
	return false
}

// LocalSourceDir is the directory of a local, non-archive plug source,
// resolved against the deployment's folder; "" for any other source.
func (d *Deployment) LocalSourceDir(p *Plug) string {
	if !IsLocalSource(p.Source) || IsArchiveSource(p.Source) {
		return ""
	}
	if filepath.IsAbs(p.Source) {
		return filepath.Clean(p.Source)
	}
	return filepath.Join(d.BaseDir, filepath.FromSlash(p.Source))
}
