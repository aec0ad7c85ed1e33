// Package atomicfile is the one home of atomic file replacement: write a
// temporary file in the same folder, with its final mode before any byte,
// optionally sync it, then rename it over the target. Readers (and a
// daemon restarted after a crash, when synced) find the old content or the
// new, never a torn file, and a secret is never readable with a wider mode.
// Write and WriteFunc replace a named file; File streams into one whose name
// may be chosen at the end (a download named by its sha256). Folders
// renamed into place (plugin trees, git mirrors, the GitOps checkout) are
// not its business: their renames say so where they are.
//
// Temporary files are named "."+base+".tmp-*": a cleanup may remove what a
// crash left with the glob ".*.tmp*". It does not create folders.
package atomicfile
