// Package layout is the one home of the names of plugs' files: the lock
// beside plugs.hcl, and the state directory (.plugs/ beside plugs.hcl by
// default) as DESIGN.md draws it:
//
//	.plugs/
//	  plugs.sock                      the local API
//	  plugins/<plug>/<key>/           fetched (and built) plugin trees
//	  cache/git/<sha256 of url>/      git mirrors
//	  instances/<plug>/<instance>/    instance.json, output.log, config.json
//	  setup/                          configs of plugs setup, while it runs
//	  rollouts/<plug>.json            revisions, health verdicts, last healthy specs, holds
//	  tasks/<plug>/                   runs.json (run history), schedule.json, input/ (a run's PLUGS_INPUT)
//
// It is stdlib only and touches no file: it names paths, the packages that
// own each part create them.
package layout
