package fetch

import (
	"regexp"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	version "github.com/hashicorp/go-version"
)

var (
	fullHashRE  = regexp.MustCompile(`^[0-9a-f]{40}$`)
	shortHashRE = regexp.MustCompile(`^[0-9a-f]{7,39}$`)
)

// resolved is what a plug's version (or the GitOps ref) resolved to in a
// repository.
type resolved struct {
	Version string // the tag or branch; "" for a bare commit
	Commit  plumbing.Hash
	// Prefix is a short commit id that names no tag or branch: its commit
	// is found among the repository's objects (see Store.resolveRef), which
	// a ref listing does not show. Commit is zero until then.
	Prefix string
}

// remoteRefs are the tags and branches a repository advertises.
type remoteRefs struct {
	tags     map[string]plumbing.Hash // peeled to commits
	branches map[string]plumbing.Hash
	head     string // the default branch, "" if unknown
	headHash plumbing.Hash
}

func newRemoteRefs(refs []*plumbing.Reference) *remoteRefs {
	r := &remoteRefs{tags: map[string]plumbing.Hash{}, branches: map[string]plumbing.Hash{}}
	peeled := map[string]plumbing.Hash{}
	for _, ref := range refs {
		name := ref.Name().String()
		switch {
		case name == "HEAD":
			if ref.Type() == plumbing.SymbolicReference {
				r.head = ref.Target().Short()
			} else {
				r.headHash = ref.Hash()
			}
		case strings.HasPrefix(name, "refs/tags/") && strings.HasSuffix(name, "^{}"):
			peeled[strings.TrimSuffix(strings.TrimPrefix(name, "refs/tags/"), "^{}")] = ref.Hash()
		case ref.Name().IsTag():
			r.tags[ref.Name().Short()] = ref.Hash()
		case ref.Name().IsBranch():
			r.branches[ref.Name().Short()] = ref.Hash()
		}
	}
	for t, h := range peeled {
		r.tags[t] = h
	}
	if r.head == "" && !r.headHash.IsZero() {
		for b, h := range r.branches {
			if h == r.headHash && (r.head == "" || b < r.head) {
				r.head = b
			}
		}
	}
	return r
}

// resolve picks the commit a version string names: a full commit id, an
// exact tag, a branch, a full ref name (refs/tags/X, refs/heads/X), a short
// commit id (7 to 39 hex digits that name no tag, branch or tag version:
// resolved.Prefix),
// or a semver constraint over the tags with Terraform's meaning (the highest
// tag that satisfies it; a pre-release only when a part of the constraint
// names that exact pre-release, "= 3.0.0-rc1" or "3.0.0-rc1"). "" and "HEAD"
// mean the default branch. A tag wins over a branch of the same name. A
// leading "@" is dropped, so that Care's pip-style "@v1.0.0" and "@main"
// name the tag and the branch.
//
// It is the one resolver of plug versions and of the GitOps config
// repository's ref: both reach it through Store.resolveRef.
func (r *remoteRefs) resolve(want, where string) (resolved, error) {
	if rest, ok := strings.CutPrefix(want, "@"); ok && rest != "" {
		if _, isTag := r.tags[want]; !isTag {
			if _, isBranch := r.branches[want]; !isBranch {
				want = rest
			}
		}
	}
	switch {
	case want == "" || want == "HEAD":
		if h, ok := r.branches[r.head]; ok {
			return resolved{Version: r.head, Commit: h}, nil
		}
		if !r.headHash.IsZero() {
			return resolved{Commit: r.headHash}, nil
		}
		return resolved{}, inputErrorf("%s has no default branch; set version", where)
	case fullHashRE.MatchString(want):
		h := plumbing.NewHash(want)
		return resolved{Version: r.tagAt(h), Commit: h}, nil
	case strings.HasPrefix(want, "refs/tags/"):
		t := strings.TrimPrefix(want, "refs/tags/")
		if h, ok := r.tags[t]; ok {
			return resolved{Version: t, Commit: h}, nil
		}
		return resolved{}, inputErrorf("no tag %q in %s; tags: %s", t, where, list(r.sortedTags()))
	case strings.HasPrefix(want, "refs/heads/"):
		b := strings.TrimPrefix(want, "refs/heads/")
		if h, ok := r.branches[b]; ok {
			return resolved{Version: b, Commit: h}, nil
		}
		return resolved{}, inputErrorf("no branch %q in %s; branches: %s", b, where, list(r.sortedBranches()))
	}
	if h, ok := r.tags[want]; ok {
		return resolved{Version: want, Commit: h}, nil
	}
	if h, ok := r.branches[want]; ok {
		return resolved{Version: want, Commit: h}, nil
	}
	c, err := version.NewConstraint(want)
	if err != nil && shortHashRE.MatchString(want) {
		return resolved{Prefix: want}, nil
	}
	if err != nil {
		return resolved{}, inputErrorf("no tag or branch %q in %s; tags: %s", want, where, list(r.sortedTags()))
	}
	exact := exactVersions(want)
	var best *version.Version
	bestTag := ""
	var candidates []string
	for _, t := range r.sortedTags() {
		v, err := version.NewVersion(t)
		if err != nil {
			continue
		}
		candidates = append(candidates, t)
		if v.Prerelease() != "" && !namesExactly(exact, v) {
			continue // Terraform's rule: a pre-release is chosen only by name
		}
		if !c.Check(v) {
			continue
		}
		if best == nil || v.GreaterThan(best) || (v.Equal(best) && t < bestTag) {
			best, bestTag = v, t
		}
	}
	if best == nil && shortHashRE.MatchString(want) {
		return resolved{Prefix: want}, nil // digits only: no tag is that version
	}
	if best == nil {
		if _, err := version.NewVersion(want); err == nil { // a plain version names one tag
			return resolved{}, inputErrorf("no tag or branch %q in %s; tags: %s", want, where, list(r.sortedTags()))
		}
		return resolved{}, inputErrorf("no tag of %s satisfies %q; candidates: %s", where, want, list(candidates))
	}
	return resolved{Version: bestTag, Commit: r.tags[bestTag]}, nil
}

// constraintPartRE splits one part of a constraint into operator and version.
var constraintPartRE = regexp.MustCompile(`^\s*(=|!=|>=|<=|>|<|~>)?\s*(\S+)\s*$`)

// exactVersions returns the versions that the parts of constraint s name
// exactly ("= 1.2.3" or "1.2.3").
func exactVersions(s string) []*version.Version {
	var out []*version.Version
	for _, part := range strings.Split(s, ",") {
		m := constraintPartRE.FindStringSubmatch(part)
		if m == nil || (m[1] != "" && m[1] != "=") {
			continue
		}
		if v, err := version.NewVersion(m[2]); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// namesExactly reports whether v is one of exact, pre-release included.
func namesExactly(exact []*version.Version, v *version.Version) bool {
	for _, e := range exact {
		if e.Equal(v) && e.Prerelease() == v.Prerelease() {
			return true
		}
	}
	return false
}

// sortedTags lists the tags, highest version first, then other tags by name.
func (r *remoteRefs) sortedTags() []string {
	tags := make([]string, 0, len(r.tags))
	for t := range r.tags {
		tags = append(tags, t)
	}
	sort.Slice(tags, func(i, j int) bool {
		vi, ei := version.NewVersion(tags[i])
		vj, ej := version.NewVersion(tags[j])
		switch {
		case ei == nil && ej == nil && !vi.Equal(vj):
			return vi.GreaterThan(vj)
		case (ei == nil) != (ej == nil):
			return ei == nil
		}
		return tags[i] < tags[j]
	})
	return tags
}

// sortedBranches lists the branches by name.
func (r *remoteRefs) sortedBranches() []string {
	out := make([]string, 0, len(r.branches))
	for b := range r.branches {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}

// tagAt is the highest tag (sortedTags' order) at commit h, "" if none.
func (r *remoteRefs) tagAt(h plumbing.Hash) string {
	for _, t := range r.sortedTags() {
		if r.tags[t] == h {
			return t
		}
	}
	return ""
}

func list(items []string) string {
	if len(items) == 0 {
		return "(none)"
	}
	const max = 20
	if len(items) > max {
		return strings.Join(items[:max], ", ") + ", ..."
	}
	return strings.Join(items, ", ")
}
