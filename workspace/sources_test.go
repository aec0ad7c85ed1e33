package workspace_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/plugs-dev/plugs/daemon"
	"github.com/plugs-dev/plugs/fetch"
	"github.com/plugs-dev/plugs/internal/gittest"
	"github.com/plugs-dev/plugs/internal/source"
	"github.com/plugs-dev/plugs/workspace"
)

// pluginFiles is a plugin with a typed param, in plugin.hcl.
func pluginFiles(name string) map[string]string {
	return map[string]string{
		"plugin.hcl": fmt.Sprintf(`plugin %q {
  version = "1.0.0"
  command = ["sh", "./run.sh"]
  param "level" {
    type     = number
    required = true
  }
}
`, name),
		"run.sh": "#!/bin/sh\nexec sleep 60\n",
	}
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// writeArchive writes files (under prefix) as the archive kind name's
// ending says.
func writeArchive(t *testing.T, name, prefix string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	switch ext := source.ArchiveExt(name); ext {
	case ".zip", ".fp":
		zw := zip.NewWriter(&buf)
		for n, body := range files {
			h := &zip.FileHeader{Name: prefix + n, Method: zip.Deflate}
			h.SetMode(0o755)
			w, err := zw.CreateHeader(h)
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte(body))
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	case ".tar", ".tar.gz", ".tgz":
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		for n, body := range files {
			if err := tw.WriteHeader(&tar.Header{Name: prefix + n, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
				t.Fatal(err)
			}
			tw.Write([]byte(body))
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if ext == ".tar" {
			buf = tb
		} else {
			gz := gzip.NewWriter(&buf)
			gz.Write(tb.Bytes())
			gz.Close()
		}
	default:
		t.Fatalf("%s: not an archive", name)
	}
	if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEverySourceKindThroughValidateFetchAndRun takes one plug of every
// local source kind (and a git repository) through the three paths that
// read sources: validate (Open + CheckOffline, what plugs validate runs),
// fetch (the store, what plugs fetch runs) and run (daemon.PlanLocal: the
// daemon's loader, what plugs run and plugs plan run). Each must accept
// the source, and once fetched, validate must reach its manifest (the
// param type is checked). `source = "./x.fp"` used to be a folder that
// does not exist to validate, and a plugin to fetch and run.
func TestEverySourceKindThroughValidateFetchAndRun(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "plugins", "folder"), pluginFiles("folder"))
	writeTree(t, filepath.Join(dir, "mono", "tools", "sub"), pluginFiles("sub"))
	sources := map[string]string{
		"folder":    "./plugins/folder",
		"subfolder": "./mono//tools/sub",
	}
	if err := os.MkdirAll(filepath.Join(dir, "uploads"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, ext := range source.ArchiveExts {
		name := "arch" + strings.NewReplacer(".", "-").Replace(ext)
		writeArchive(t, filepath.Join(dir, "uploads", name+ext), "", pluginFiles(name))
		sources[name] = "./uploads/" + name + ext
	}
	writeArchive(t, filepath.Join(dir, "uploads", "bundle.zip"), "plugins/inner/", pluginFiles("inner"))
	sources["archive-subdir"] = "./uploads/bundle.zip//plugins/inner"
	repo := gittest.NewRepoIn(t, dir, "gitrepo")
	repo.Commit(pluginFiles("gitplug"))
	repo.Tag("v1.0.0")
	sources["gitplug"] = "git::./gitrepo"

	var conf strings.Builder
	conf.WriteString("host = \"edge\"\n")
	names := make([]string, 0, len(sources))
	for name := range sources {
		names = append(names, name)
	}
	for _, name := range names {
		version := ""
		if strings.HasPrefix(sources[name], "git::") {
			version = "  version = \"~> 1.0\"\n"
		}
		fmt.Fprintf(&conf, "plug %q {\n  source = %q\n%s  params = { level = 3 }\n}\n", name, sources[name], version)
	}
	file := filepath.Join(dir, "plugs.hcl")
	if err := os.WriteFile(file, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(dir, ".plugs")
	opts := workspace.Options{File: file, StateDir: stateDir}

	// validate, before anything is fetched: no source is refused or missing.
	w, diags := workspace.Open(opts)
	diags = append(diags, w.CheckOffline()...)
	if diags.HasErrors() {
		t.Fatalf("validate before fetch: %v", diags)
	}
	for _, d := range diags {
		if d.Summary != "Manifest not fetched yet" {
			t.Errorf("validate before fetch: unexpected %s: %s", d.Summary, d.Detail)
		}
	}

	// fetch: every plug is fetched, and the lock names each.
	ctx := context.Background()
	store := w.Store(fetch.Options{})
	lock := w.LockOrEmpty()
	trees, err := store.Fetch(ctx, w.Deployment, lock, fetch.FetchOptions{})
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if len(trees) != len(sources) || len(lock.Plugs) != len(sources) {
		t.Fatalf("fetch: %d trees, %d lock entries, want %d", len(trees), len(lock.Plugs), len(sources))
	}
	if err := fetch.WriteLock(w.LockFile, lock); err != nil {
		t.Fatal(err)
	}

	// validate, after fetch: every manifest is reached, so a param of the
	// wrong type is reported for every plug.
	bad := strings.ReplaceAll(conf.String(), "level = 3", `level = "high"`)
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	w, diags = workspace.Open(opts)
	diags = append(diags, w.CheckOffline()...)
	got := map[string]bool{}
	for _, d := range diags {
		if d.Severity == hcl.DiagError && d.Summary == "Invalid param value" {
			for _, name := range names {
				if strings.Contains(d.Detail, fmt.Sprintf("plugin %q", pluginName(name))) {
					got[name] = true
				}
			}
		} else if d.Summary != "Missing required param" {
			t.Errorf("validate after fetch: unexpected %s: %s", d.Summary, d.Detail)
		}
	}
	for _, name := range names {
		if !got[name] {
			t.Errorf("validate after fetch did not check the params of %s (source %s)", name, sources[name])
		}
	}
	if err := os.WriteFile(file, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	// run: the daemon's loader renders one instance per plug.
	plan, err := daemon.PlanLocal(ctx, daemon.LocalOptions{File: file, StateDir: stateDir})
	if err != nil {
		t.Fatalf("plan (the run path): %v", err)
	}
	if plan.Start != len(sources) {
		t.Errorf("plan starts %d instances, want %d: %+v", plan.Start, len(sources), plan.Changes)
	}
}

// pluginName is the manifest name of the plug name (see the fixtures).
func pluginName(plug string) string {
	switch plug {
	case "subfolder":
		return "sub"
	case "archive-subdir":
		return "inner"
	}
	return plug
}

// TestEnvFailure: a file that exists but cannot be read is the
// environment's failure (plugs validate exits 2), a missing or wrong file
// the input's (exit 1), told apart by data, not by a summary's text.
func TestEnvFailure(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plugs.hcl")
	_, diags := workspace.Open(workspace.Options{File: file})
	if !diags.HasErrors() || workspace.EnvFailure(diags) {
		t.Errorf("missing plugs.hcl: %v, env failure %v; want an input error", diags, workspace.EnvFailure(diags))
	}
	if err := os.WriteFile(file, []byte("host = \"a\"\nplug \"x\" {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags = workspace.Open(workspace.Options{File: file})
	if !diags.HasErrors() || workspace.EnvFailure(diags) {
		t.Errorf("broken plugs.hcl: %v, env failure %v; want an input error", diags, workspace.EnvFailure(diags))
	}
	if err := os.WriteFile(file, []byte("host = \"a\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A lock that is a folder cannot be read: not the input's fault.
	if err := os.Mkdir(filepath.Join(dir, "plugs.lock.hcl"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, diags = workspace.Open(workspace.Options{File: file})
	if !workspace.EnvFailure(diags) {
		t.Errorf("unreadable lock: %v, want an environment failure", diags)
	}
}

// TestRunPathDiagnosticsHideSecretLines: a wrong secret param found on the
// run path (the daemon's loader, through render) is shown with its
// snippet, and the line that assigns the secret is blank.
func TestRunPathDiagnosticsHideSecretLines(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "p"), map[string]string{
		"plugin.hcl": `plugin "p" {
  command = ["sh", "./run.sh"]
  param "token" {
    type   = number
    secret = true
  }
}
`,
		"run.sh": "#!/bin/sh\nexec sleep 60\n",
	})
	file := filepath.Join(dir, "plugs.hcl")
	if err := os.WriteFile(file, []byte("host = \"edge\"\nplug \"p\" {\n  source = \"./p\"\n  params = {\n    token = \"hunter2-secret\"\n  }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := daemon.PlanLocal(context.Background(), daemon.LocalOptions{File: file, StateDir: filepath.Join(dir, ".plugs")})
	if err == nil || !strings.Contains(err.Error(), "Invalid param value") {
		t.Fatalf("plan: %v, want Invalid param value", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the run path's diagnostic shows the secret:\n%s", err)
	}
	if !strings.Contains(err.Error(), "plugs.hcl:5,") {
		t.Errorf("the diagnostic has no source position:\n%s", err)
	}
}

// TestReaderRelease: Release drops what the last Open read (its syntax
// trees stay reachable only through the Workspace it returned), and the
// Reader reads manifests and deployments afterwards as before.
func TestReaderRelease(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plugs.hcl")
	if err := os.WriteFile(file, []byte("plug \"p\" {\n  source = \"./p\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := workspace.NewReader()
	w, diags := r.Open(workspace.Options{File: file})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	r.Release()
	if _, ok := w.Files()[file]; !ok {
		t.Errorf("after Release the workspace lost its own files: %v", w.Files())
	}
	w2, diags := r.Open(workspace.Options{File: file})
	if diags.HasErrors() || w2.Deployment == nil || w2.Deployment.Plug("p") == nil {
		t.Fatalf("Open after Release: %v", diags)
	}
}
