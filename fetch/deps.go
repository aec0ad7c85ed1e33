package fetch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/plugs-dev/plugs/spec"
)

// PythonDepsDir is the folder of a plugin tree that plugs build installs
// its Python dependencies into (pip install --target); the runner puts it on
// PYTHONPATH. A venv is not relocatable, a --target folder is: it moves
// with the tree into a bundle and onto another host.
const PythonDepsDir = ".deps"

// deps is what a plugin tree needs installed at build time: Python
// requirements (requirements.txt, MobileOps "dependencies") and an npm
// package (package.json, installed into node_modules).
type deps struct {
	requirementsTxt bool
	python          []string // pip requirement specifiers of the manifest
	npm             bool
	npmLock         bool // package-lock.json or npm-shrinkwrap.json: npm ci
}

func (d deps) any() bool { return d.requirementsTxt || len(d.python) > 0 || d.npm }

// depsOf looks at a fetched tree (two or three stats) for what to install.
func depsOf(dir string, m *spec.Manifest) deps {
	var d deps
	isFile := func(name string) bool {
		st, err := os.Stat(filepath.Join(dir, name))
		return err == nil && st.Mode().IsRegular()
	}
	d.requirementsTxt = isFile("requirements.txt")
	if m != nil {
		d.python = m.Dependencies
	}
	if isFile("package.json") {
		d.npm = true
		d.npmLock = isFile("package-lock.json") || isFile("npm-shrinkwrap.json")
	}
	return d
}

// installDeps installs d into the tree being built at dir, with the user's
// package indexes: pip reads its own configuration and PIP_* (index-url,
// find-links), npm its .npmrc and npm_config_*; plugs adds none. Output goes
// to the build log. Nothing is installed outside dir.
func (s *Store) installDeps(ctx context.Context, t *Tree, dir string, d deps, logPath string) error {
	if d.requirementsTxt || len(d.python) > 0 {
		argv := []string{"python3", "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
			"--no-warn-script-location", "--target", filepath.Join(dir, PythonDepsDir)}
		if d.requirementsTxt {
			argv = append(argv, "-r", "requirements.txt")
		}
		for _, r := range d.python {
			if strings.HasPrefix(r, "-") {
				return inputErrorf("dependency %q: an option is not a requirement", r)
			}
			argv = append(argv, r)
		}
		if err := s.runTool(ctx, t, dir, argv, logPath, "python3 -m pip (Debian: apt-get install python3-pip)"); err != nil {
			return err
		}
	}
	if d.npm {
		argv := []string{"npm", "install", "--omit=dev", "--no-audit", "--no-fund", "--no-package-lock"}
		if d.npmLock {
			argv = []string{"npm", "ci", "--omit=dev", "--no-audit", "--no-fund"}
		}
		if err := s.runTool(ctx, t, dir, argv, logPath, "npm (Debian: apt-get install npm)"); err != nil {
			return err
		}
	}
	return nil
}

// Python3Version runs "python3 --version" (the python3 a plugin's
// "python3 main.py" runs, from $PATH) and returns its version, such as
// "3.11.2": spec checks a manifest's compatibility.python_version with it
// (spec.Parser.Python3Version). It is bounded by ten seconds.
func Python3Version() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("python3 --version: %v", err)
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "Python ")
	if !ok || v == "" {
		return "", fmt.Errorf("python3 --version printed %q", strings.TrimSpace(string(out)))
	}
	return v, nil
}

// runTool runs a dependency installer in dir, appending to the build log.
func (s *Store) runTool(ctx context.Context, t *Tree, dir string, argv []string, logPath, what string) error {
	if _, err := exec.LookPath(argv[0]); err != nil {
		return inputErrorf("plugin %s needs %s to install its dependencies: %v", t.Plug, what, err)
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "$ %s\n", strings.Join(argv, " "))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLUGS_PLUG="+t.Plug, "PLUGS_REVISION="+t.Revision, "PLUGS_VERSION="+t.Version)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &inputError{fmt.Errorf("installing the dependencies of %s at %s: %q failed: %v; output (%s):\n%s",
			t.Plug, describeTree(t), strings.Join(argv, " "), err, logPath, tail(logPath, buildTailLines))}
	}
	return nil
}
