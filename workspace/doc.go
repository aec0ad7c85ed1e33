// Package workspace is the one loader of a deployment: plugs.hcl, the lock
// beside it and the manifest of every plug, read by one spec.Parser into
// one list of hcl.Diagnostics. plugs validate, plan, fetch (and lock, build,
// bundle), run and setup all open a Workspace, so that they read the same
// files the same way and report the same mistakes.
//
//   - Open reads plugs.hcl and the lock (a missing lock is not an error);
//     a Reader decodes again only the lock entries that changed since its
//     last Open (spec.LockCache).
//   - CheckOffline finds every manifest reachable without the network
//     (inline blocks, local folders, trees already fetched) and checks the
//     params against them: what plugs validate reports.
//   - Store opens the state directory's plugin store with the workspace's
//     parser for manifests, so that a manifest's diagnostics keep their
//     source snippet; Desired renders the instances of fetched trees.
//
// Diagnostics stay data (hcl.Diagnostics with Subject ranges, and Files for
// snippets) until a view renders them. EnvFailure tells a file that could
// not be read (the environment's fault, exit 2) from a wrong input.
//
// It does not resolve versions or download (fetch does), render config
// (render does) or run anything.
package workspace
