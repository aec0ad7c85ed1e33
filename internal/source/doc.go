// Package source is the one home of plug source kinds: what a source as
// written in plugs.hcl is (a git repository, a local folder, a local
// archive, an archive URL), where it is, its //subdir, and which file
// endings make an archive. spec checks sources with it, fetch fetches by
// it, and the workspace loader finds local manifests by it, so that plugs
// validate, fetch and run never disagree about a source.
//
// It is pure (no files, no network) and does not fetch, hash or unpack.
package source
