// Package fetch owns plugin sources: git repositories, local directories and
// archives; version resolution over tags; the cache of git mirrors; the lock
// file (writing it); content hashes; build hooks; and offline bundles. The
// GitOps config repository is one more git source (ConfigRepo): the same
// client, credentials, errors and ref resolver as a plug's, so that a ref
// means one commit wherever it is written.
//
// What is verified when ("a tree whose content does not match its lock hash
// is never run"):
//
//   - Fetch: a tree new to the store is hashed from its content and must
//     match the lock before it is installed, read-only, with its marker
//     (<tree>.done.json); a tree already in the store is trusted by its
//     marker's hash. A local folder source is compared with the lock by its
//     content hash (see below), an archive by its sha256.
//   - Build: a build's output is hashed and recorded in its marker, with the
//     build argv. The tree of an inline plugin {} block's build is kept per
//     build command (<revision>.build-<id>), so changing that build makes the
//     plug "not built" until plugs build, and gives it a new folder.
//   - Runnable (what the daemon runs): the marker must match the lock, and
//     the tree's content must hash to the marker's hash. It is hashed the
//     first time a Store sees it (once per daemon start), then again only
//     when its fingerprint (name, size, inode, mtime and ctime of every
//     file) changed; a tree changed less than two seconds before it was
//     hashed is not remembered. Folder sources are checked the same way.
//     FetchRunnable is Fetch and Runnable in one pass; with DeferVerify it
//     leaves the content check to VerifyDirs, which the daemon calls for
//     the trees a reconcile starts processes in (the runner calls
//     VerifyDir before every start).
//   - Unbundle: every file against the bundle's MANIFEST, and every tree
//     against its hash, before anything is installed.
//
// What is on disk when: a tree and its marker are installed without an
// fsync each, and flushed together with one syncfs(2) (Store.Sync): before
// Fetch, Build and Unbundle return, or, with FetchOptions.DeferSync, when
// the caller says (the daemon: right after the reconcile). A marker a crash
// left empty or cut short is no marker: the tree is fetched again.
//
// It does not start long-running processes; build commands are the only
// programs it runs, and only at build time.
package fetch
