package spec

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	version "github.com/hashicorp/go-version"
	"github.com/hashicorp/hcl/v2"
)

// parseLooseConstraint parses a version constraint as manifests write them:
// go-version's syntax (">= 3.9", "~> 1.2", "3.11"), also "3.9+" for ">= 3.9"
// and "==3.11" for "= 3.11".
func parseLooseConstraint(s string) (version.Constraints, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutSuffix(s, "+"); ok {
		s = ">= " + rest
	}
	s = strings.ReplaceAll(s, "==", "=")
	return version.NewConstraint(s)
}

// CheckRunnable checks what the tree at dir must hold for m to run here:
// its command's program (a file of the tree, executable, with a usable
// first line) and its compatibility constraints (this plugs, python3).
// plugs validate and every load of the daemon ask it, so that what
// validate refuses is refused before anything is stopped (rng: the plug's
// source, where the diagnostics point when m has no place of its own).
func (p *Parser) CheckRunnable(dir string, m *Manifest, rng hcl.Range) hcl.Diagnostics {
	return append(checkCommandFile(dir, m, rng), p.checkCompatibility(m, rng)...)
}

// checkCompatibility checks a manifest's compatibility constraints against
// this plugs (p.PlugsVersion) and the python3 that will run the plugin
// (p.Python3Version). What cannot be checked is said in a warning.
func (p *Parser) checkCompatibility(m *Manifest, plugRange hcl.Range) hcl.Diagnostics {
	var diags hcl.Diagnostics
	c := m.Compatibility
	check := func(constraint string, rng hcl.Range, what, have string, haveErr error) {
		if constraint == "" {
			return
		}
		cs, err := parseLooseConstraint(constraint)
		if err != nil {
			return // diagnosed when the manifest was decoded
		}
		if haveErr != nil {
			diags = append(diags, warnf(rng, "Compatibility not checked",
				"The plugin %q needs %s %s, which could not be checked: %s.", m.Name, what, constraint, haveErr))
			return
		}
		v, err := version.NewVersion(strings.TrimPrefix(have, "v"))
		if err != nil {
			diags = append(diags, warnf(rng, "Compatibility not checked",
				"The plugin %q needs %s %s, but the version here, %q, is not a release version.", m.Name, what, constraint, have))
			return
		}
		if !cs.Check(v.Core()) && !cs.Check(v) {
			diags = append(diags, errorf(rng, "Incompatible plugin",
				"The plugin %q needs %s %s, and this host has %s. Install a matching %s, or use a version of the plugin that supports %s.",
				m.Name, what, constraint, v, what, v))
		}
	}
	rng := func(r hcl.Range) hcl.Range {
		if r.Filename == "" {
			return plugRange
		}
		return r
	}
	if c.PlatformVersion != "" {
		var err error
		if p.PlugsVersion == "" {
			err = fmt.Errorf("the version of this plugs is unknown")
		}
		check(c.PlatformVersion, rng(c.PlatformVersionRange), "plugs", p.PlugsVersion, err)
	}
	if c.PythonVersion != "" {
		have, err := "", fmt.Errorf("no python3 version probe is configured")
		if p.Python3Version != nil {
			have, err = p.Python3Version()
		}
		check(c.PythonVersion, rng(c.PythonVersionRange), "python3", have, err)
	}
	return diags
}

// checkCommandFile checks that the program of m's command runs from the
// plugin's folder dir, when it names a file there (a relative command word,
// "./run.sh" or "main.py"; the runner runs such a file, not one of $PATH):
// the file must have its run bit, and a script must start with "#!".
// programInTree refuses a program word that names a path out of the
// plugin's tree ("../../bin/sh"): the runner resolves a relative word with a
// slash against the tree, and what runs must be what was fetched and
// verified. An absolute path (a system interpreter) and a bare name looked
// up on $PATH are the plugin's choice.
func programInTree(word, attr string, rng hcl.Range) hcl.Diagnostics {
	if word == "" || filepath.IsAbs(word) || !strings.Contains(word, "/") {
		return nil
	}
	if c := filepath.Clean(word); c == ".." || strings.HasPrefix(c, "../") {
		return hcl.Diagnostics{errorf(rng, "Plugin program outside its folder",
			"The %s runs %q, which is not in the plugin's folder: name a file of the plugin (like \"./main.py\"), a program on $PATH (\"python3\") or an absolute path (\"/usr/bin/python3\").", attr, word)}
	}
	return nil
}

func checkCommandFile(dir string, m *Manifest, rng hcl.Range) hcl.Diagnostics {
	if len(m.Command) == 0 || filepath.IsAbs(m.Command[0]) {
		return nil
	}
	word := m.Command[0]
	file := filepath.Join(dir, filepath.FromSlash(word))
	if !strings.Contains(word, "/") {
		if _, err := os.Lstat(file); err != nil {
			return nil // a program on $PATH, like python3
		}
	}
	st, err := os.Stat(file)
	switch {
	case err != nil && m.Kind == KindCompiled && len(m.Build) > 0:
		return nil // made by the build
	case err != nil:
		return hcl.Diagnostics{errorf(rng, "Plugin program not found",
			"The command of plugin %q runs %q, which is not a file of the plugin's folder %s. Fix the command, or add the file.", m.Name, word, dir)}
	case !st.Mode().IsRegular():
		return hcl.Diagnostics{errorf(rng, "Plugin program is not a file",
			"The command of plugin %q runs %q, which is not a regular file.", m.Name, word)}
	case st.Mode()&0o111 == 0:
		return hcl.Diagnostics{errorf(rng, "Plugin program is not executable",
			"The command of plugin %q runs %q, which has no run bit. Run chmod +x %s in the plugin's source (and commit it), or run it through its interpreter, like [\"python3\", %q].", m.Name, word, word, word)}
	}
	head := make([]byte, 4)
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	n, _ := io.ReadFull(f, head)
	f.Close()
	head = head[:n]
	if bytes.HasPrefix(head, []byte("#!")) || bytes.HasPrefix(head, []byte("\x7fELF")) {
		return nil
	}
	return hcl.Diagnostics{errorf(rng, "Plugin program has no interpreter line",
		"The command of plugin %q runs %q, which is neither a program nor a script starting with \"#!\" (such as \"#!/usr/bin/env python3\"). Add the line, or run it through its interpreter, like [\"python3\", %q].", m.Name, word, word)}
}
