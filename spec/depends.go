package spec

import (
	"slices"
	"strings"

	version "github.com/hashicorp/go-version"
	"github.com/hashicorp/hcl/v2"
)

// checkVersion is the package's checkVersion, remembered per version
// string: parsing a constraint is costly, and most plugs share theirs.
func (dc *decoder) checkVersion(s string, rng hcl.Range) hcl.Diagnostics {
	diags, seen := dc.versions[s]
	if !seen {
		diags = checkVersion(s, rng)
		if dc.versions == nil {
			dc.versions = map[string]hcl.Diagnostics{}
		}
		dc.versions[s] = diags
		return diags
	}
	if len(diags) == 0 {
		return nil
	}
	return checkVersion(s, rng) // with this plug's range
}

// checkVersion accepts a version constraint ("~> 1.2", ">= 1.0, < 2.0",
// "1.4.2") or anything that is a valid git ref name (a tag, a branch, a
// commit id), optionally after an "@" (Care's pip-style "@v1.0.0").
func checkVersion(s string, rng hcl.Range) hcl.Diagnostics {
	if rest, ok := strings.CutPrefix(s, "@"); ok && rest != "" {
		s = rest
	}
	if _, err := version.NewConstraint(s); err == nil || validRefName(s) {
		return nil
	}
	return hcl.Diagnostics{errorf(rng, "Invalid version constraint",
		"The version %q is neither a version constraint (such as \"~> 1.2\", \">= 1.0, < 2.0\" or \"1.4.2\") nor a git tag, branch or commit id. Fix the constraint, or write the exact tag or branch name.", s)}
}

// validRefName follows git check-ref-format for a single ref name.
func validRefName(s string) bool {
	if s == "" || s == "@" || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") ||
		strings.HasSuffix(s, ".") || strings.HasSuffix(s, ".lock") ||
		strings.Contains(s, "..") || strings.Contains(s, "@{") || strings.Contains(s, "//") {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || strings.ContainsRune("~^:?*[\\", r) {
			return false
		}
	}
	for _, part := range strings.Split(s, "/") {
		if strings.HasPrefix(part, ".") {
			return false
		}
	}
	return true
}

// checkDependencies reports depends_on entries naming no plug, and cycles.
func checkDependencies(d *Deployment) hcl.Diagnostics {
	var diags hcl.Diagnostics
	names := make([]string, 0, len(d.Plugs))
	byName := map[string]*Plug{}
	for _, p := range d.Plugs {
		names = append(names, p.Name)
		byName[p.Name] = p
	}
	for _, p := range d.Plugs {
		for i, dep := range p.DependsOn {
			if _, ok := byName[dep]; !ok {
				diags = append(diags, errorf(p.DependsOnRanges[i], "Reference to undeclared plug",
					"The plug %q depends on %q, but no plug of that name is declared.%s List the names of other plug blocks in depends_on.", p.Name, dep, didYouMean(dep, names)))
			}
		}
	}

	// Depth-first search in declaration order; a edge to a plug on the
	// current path closes a cycle, reported once per set of plugs.
	const (
		unvisited = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	reported := map[string]bool{}
	var visit func(p *Plug)
	visit = func(p *Plug) {
		state[p.Name] = onPath
		path = append(path, p.Name)
		for i, dep := range p.DependsOn {
			next, ok := byName[dep]
			if !ok {
				continue
			}
			switch state[dep] {
			case unvisited:
				visit(next)
			case onPath:
				start := len(path) - 1
				for path[start] != dep {
					start--
				}
				cycle := append(append([]string(nil), path[start:]...), dep)
				key := cycleKey(cycle[:len(cycle)-1])
				if !reported[key] {
					reported[key] = true
					diags = append(diags, errorf(p.DependsOnRanges[i], "Dependency cycle",
						"The plugs %s depend on each other, so none of them can start first. Remove one of these depends_on entries.", strings.Join(cycle, " -> ")))
				}
			}
		}
		path = path[:len(path)-1]
		state[p.Name] = done
	}
	for _, p := range d.Plugs {
		if state[p.Name] == unvisited {
			visit(p)
		}
	}
	return diags
}

// cycleKey identifies a cycle regardless of where it is entered.
func cycleKey(members []string) string {
	sorted := slices.Sorted(slices.Values(members))
	return strings.Join(sorted, "\x00")
}
