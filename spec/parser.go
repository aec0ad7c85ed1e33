package spec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/hashicorp/hcl/v2"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/plugs-dev/plugs/internal/source"
)

// Parser reads plugs.hcl, plugin manifests and plugs.lock.hcl, and keeps the
// source of every file it read so that diagnostics can be rendered with
// snippets. Unlike hclparse.Parser it never serves a stale cached copy: each
// Load re-reads its file. A Parser is not safe for concurrent use.
type Parser struct {
	files map[string]*hcl.File
	// lazy are files decoded without a syntax tree (LoadLockCached), by
	// filename: Files parses them when it is asked for them.
	lazy map[string][]byte
	// secrets are the lines of the deployments it decoded that Files blanks.
	secrets secretRanges

	// Hostname returns the default host of a deployment that sets none.
	Hostname func() (string, error)
	// Getenv backs the env() function; nil means os.Getenv.
	Getenv func(string) string

	// PlugsVersion is the version of this plugs, for a manifest's
	// compatibility.platform_version; "" when unknown (a development build).
	PlugsVersion string
	// Python3Version returns the version of the python3 that runs plugins
	// ("3.11.2"), for a manifest's compatibility.python_version; nil: not
	// checked (spec runs no programs: the caller provides it).
	Python3Version func() (string, error)
}

// NewParser returns a Parser using the machine's hostname and environment.
func NewParser() *Parser {
	return &Parser{files: map[string]*hcl.File{}, Hostname: os.Hostname, Getenv: os.Getenv}
}

// Files returns every file read so far, by filename, for rendering
// diagnostics. Their bytes are for display only (see output.go): control
// bytes are '?', and the lines that assign a secret are blank, once the
// manifest that marks the param secret is known (an inline plugin block at
// decode time, any other through CheckPlugs, PlugParams or Validate), and
// so is every line that holds a known secret value (the known-value rule).
// Byte offsets match the source, so every range stays right.
func (p *Parser) Files() map[string]*hcl.File {
	for name, src := range p.lazy {
		if _, ok := p.files[name]; !ok {
			p.parseHCL(src, name) // the tree a parse of the file gives: it parsed without a diagnostic
		}
	}
	p.lazy = nil
	out := make(map[string]*hcl.File, len(p.files))
	values := p.secrets.valuesNow()
	for name, f := range p.files {
		out[name] = &hcl.File{Body: f.Body, Bytes: displayBytes(f.Bytes, p.secrets.of(name), values), Nav: f.Nav}
	}
	return out
}

// MaxFileBytes is the largest plugs.hcl, manifest or lock plugs reads: a
// deployment of 1,000 plugs with 3 instances each is about 600 KB, and
// decoding takes about 20 times a file's size in memory.
const MaxFileBytes = 4 << 20

// readFile reads filename, turning a failure into a diagnostic. Anything
// but a regular file (a FIFO, a device, a folder) is refused before it is
// opened, so that reading never blocks, and so is a file over MaxFileBytes.
func (p *Parser) readFile(filename, what string) ([]byte, hcl.Diagnostics) {
	src, err := readRegularFile(filename, MaxFileBytes)
	var tooBig *fileTooBigError
	if errors.As(err, &tooBig) {
		return nil, hcl.Diagnostics{tooBigDiag(filename, what, tooBig.size)}
	}
	if err != nil {
		summary, detail := "Failed to read file", fmt.Sprintf("The %s %q could not be read: %s.", what, filename, err)
		if os.IsNotExist(err) {
			summary = "File not found"
			detail = fmt.Sprintf("The %s %q does not exist. Check the path, or create it.", what, filename)
		}
		diag := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail}
		if !os.IsNotExist(err) {
			diag.Extra = readFailure{err}
		}
		return nil, hcl.Diagnostics{diag}
	}
	return src, nil
}

// readFailure marks the diagnostic of a file that exists but could not be
// read (permissions, I/O): the environment's failure, not the input's.
type readFailure struct{ err error }

// IsReadFailure reports whether d says that a file could not be read for a
// reason other than its absence or its content (see readFile).
func IsReadFailure(d *hcl.Diagnostic) bool {
	_, ok := d.Extra.(readFailure)
	return ok
}

func tooBigDiag(filename, what string, size int64) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "File too large",
		Detail: fmt.Sprintf("The %s %q has %d bytes; plugs reads at most %d (%d MiB). Is it the right file?", what, filename, size, MaxFileBytes, MaxFileBytes>>20)}
}

type fileTooBigError struct{ size int64 }

func (e *fileTooBigError) Error() string { return fmt.Sprintf("%d bytes is too large", e.size) }

// ReadRegularFile reads filename as the parser reads a declaration: a
// regular file of at most MaxFileBytes, refused before it is opened when it
// is anything else (a FIFO, whose open would block), or too large. Every
// reader of plugs.hcl and its lock goes through it, not os.ReadFile.
func ReadRegularFile(filename string) ([]byte, error) {
	return readRegularFile(filename, MaxFileBytes)
}

// readRegularFile reads a regular file of at most max bytes. It looks at
// the file's type before opening it (opening a FIFO blocks), and reads no
// more than max+1 bytes whatever the file grows to meanwhile.
func readRegularFile(filename string, max int64) ([]byte, error) {
	st, err := os.Stat(filename)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", st.Mode().Type())
	}
	if st.Size() > max {
		return nil, &fileTooBigError{st.Size()}
	}
	f, err := os.OpenFile(filename, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	// One read of the size stat gave (and one byte more, to see growth).
	b := make([]byte, 0, min(st.Size(), max)+1)
	for int64(len(b)) <= max {
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
	if int64(len(b)) > max {
		return nil, &fileTooBigError{int64(len(b))}
	}
	return b, nil
}

// parseHCL parses src as native HCL syntax and remembers the file.
func (p *Parser) parseHCL(src []byte, filename string) (*hcl.File, hcl.Diagnostics) {
	if int64(len(src)) > MaxFileBytes {
		return nil, hcl.Diagnostics{tooBigDiag(filename, "file", int64(len(src)))}
	}
	diags, splits := checkNestingSplitHCL(src, filename, splitBytes)
	if diags != nil {
		return nil, diags
	}
	if diags := checkNumbersHCL(src, filename); diags != nil {
		p.files[filename] = &hcl.File{Body: hcl.EmptyBody(), Bytes: src} // for the snippet
		return nil, diags
	}
	f, diags := parseSplit(src, filename, splits)
	if f != nil {
		p.files[filename] = f
	}
	return f, diags
}

// parseJSON parses src as HCL's JSON syntax and remembers the file.
func (p *Parser) parseJSON(src []byte, filename string) (*hcl.File, hcl.Diagnostics) {
	if int64(len(src)) > MaxFileBytes {
		return nil, hcl.Diagnostics{tooBigDiag(filename, "file", int64(len(src)))}
	}
	if diags := checkNestingJSON(src, filename); diags != nil {
		return nil, diags
	}
	if diags := checkNumbersJSON(src, filename); diags != nil {
		p.files[filename] = &hcl.File{Body: hcl.EmptyBody(), Bytes: src} // for the snippet
		return nil, diags
	}
	f, diags := hcljson.Parse(src, filename)
	if f != nil {
		p.files[filename] = f
	}
	return f, diags
}

// IsLocalSource reports whether a plug source is a path on this machine
// (./dir, ../dir, /abs/dir) rather than a git repository or a URL. The
// rule is internal/source's.
func IsLocalSource(s string) bool { return source.IsLocalPath(s) }

// IsArchiveSource reports whether a plug source names an archive file
// (.zip, .fp, .tar.gz, .tgz, .tar), local or remote, with or without a
// //subdir. The rule is internal/source's.
func IsArchiveSource(s string) bool {
	src, err := source.Parse(s, "/")
	return err == nil && (src.Kind == source.Archive || src.Kind == source.RemoteArchive)
}

// LocalSourceDir is the directory of a local, non-archive plug source
// (its //subdir included), resolved against the deployment's folder; ""
// for any other source.
func (d *Deployment) LocalSourceDir(p *Plug) string {
	if src, err := source.Parse(p.Source, d.BaseDir); err == nil && src.Kind == source.Dir {
		return src.Location
	}
	return ""
}
