// Package fetch owns plugin sources: git repositories, local directories and
// archives; version resolution over tags; the cache of git mirrors; the lock
// file (writing it); content hashes; build hooks; and offline bundles.
//
// It does not start long-running processes; build commands are the only
// programs it runs, and only at build time.
package fetch
