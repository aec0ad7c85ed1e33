package e2e

import "slices"

// sandboxOn says whether a test's daemon runs with the sandbox: only the
// sandbox tests ask for it (PLUGS_SANDBOX=true in their env).
func sandboxOn(env []string) bool { return slices.Contains(env, "PLUGS_SANDBOX=true") }
