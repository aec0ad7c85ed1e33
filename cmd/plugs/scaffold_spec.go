package main

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"github.com/plugs-dev/plugs/internal/atomicfile"
)

// templates are the files plugs init and plugs new write; each ends in
// .tmpl so that Go never builds the scaffolded Go code as part of plugs.
//
//go:embed templates
var templates embed.FS

// scaffoldLangs are the languages plugs new writes plugins in.
var scaffoldLangs = []string{"go", "python", "shell"}

// scaffoldData is what the templates see.
type scaffoldData struct {
	Name      string
	PluginDir string
}

// render executes one embedded template.
func render(name string, data scaffoldData) ([]byte, error) {
	src, err := templates.ReadFile(name)
	if err != nil {
		return nil, err
	}
	t, err := template.New(name).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, fmt.Errorf("parse template %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("render template %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// scaffoldPlugin writes the plugin name in lang into dir, which must not
// exist or be empty. It returns the files written, relative to dir.
func scaffoldPlugin(dir, name, lang string) ([]string, error) {
	if !slices.Contains(scaffoldLangs, lang) {
		return nil, fmt.Errorf("unknown language %q: want one of %s", lang, strings.Join(scaffoldLangs, ", "))
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("folder %s already exists and is not empty", dir)
	}
	root := path.Join("templates", lang)
	entries, err := fs.ReadDir(templates, root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	var written []string
	for _, e := range entries {
		out := strings.TrimSuffix(e.Name(), ".tmpl")
		content, err := render(path.Join(root, e.Name()), scaffoldData{Name: name})
		if err != nil {
			return written, err
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(out, ".sh") {
			mode = 0o755
		}
		if err := writeFileAtomic(filepath.Join(dir, out), content, mode); err != nil {
			return written, err
		}
		written = append(written, out)
	}
	return written, nil
}

// writeFileAtomic writes a file through a temporary file in the same
// folder (internal/atomicfile), so that a reader never sees it half written.
func writeFileAtomic(name string, content []byte, mode os.FileMode) error {
	return atomicfile.Write(name, content, mode, atomicfile.Durable)
}
