package spec

import (
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// ReservedEnvPrefix starts the names of the variables plugs sets in the
// environment of an instance's processes (the runner's PLUGS_CONFIG,
// PLUGS_PLUG, PLUGS_INSTANCE, PLUGS_SETUP_DIR; a one-shot run's
// PLUGS_RUN_ID, PLUGS_HOOK, PLUGS_INPUT, PLUGS_TRIGGER; the sandbox's
// PLUGS_SANDBOX_POLICY), and those it may set later: a plug's env cannot
// name one (IsReservedEnv).
const ReservedEnvPrefix = "PLUGS_"

// ReservedEnv are the variables outside ReservedEnvPrefix that plugs sets
// in an instance's environment: a notify check's socket and watchdog
// interval, as systemd gives a Type=notify service (health.InstanceEnv).
var ReservedEnv = []string{"NOTIFY_SOCKET", "WATCHDOG_USEC"}

// IsReservedEnv reports whether name is a variable plugs sets in an
// instance's environment, which a plug's env may not name: the runner's
// value wins over the plug's (PLUGS_CONFIG is the config.json plugs wrote),
// so the plug's would be dropped without a word, and a NOTIFY_SOCKET of
// the plug's would point its readiness messages elsewhere. It is the one
// list: the runner, the sandbox and health set no variable it does not
// hold.
func IsReservedEnv(name string) bool {
	return strings.HasPrefix(name, ReservedEnvPrefix) || slices.Contains(ReservedEnv, name)
}

// checkEnv refuses the variables of a plug's env = {...} argument attr
// that it cannot set: a reserved name (IsReservedEnv), and a name that is
// empty or holds '=' or NUL (the process would find another variable, or
// none). Each is reported at its key when the argument is a literal
// object.
func checkEnv(attr *hcl.Attribute, env map[string]string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, name := range sortedKeys(env) {
		rng := envKeyRange(attr, name)
		switch {
		case name == "" || strings.ContainsAny(name, "=\x00"):
			diags = append(diags, errorf(rng, "Invalid environment variable name",
				"The name %q cannot name an environment variable: a name is not empty and holds neither '=' nor NUL. Rename it.", name))
		case IsReservedEnv(name):
			diags = append(diags, errorf(rng, "Reserved environment variable",
				"The name %s is reserved: plugs sets the variables whose names start with %s, and %s, for the processes of a plug, and its values win over the plug's (PLUGS_CONFIG is the config.json plugs wrote). Remove it, or give the value another name.",
				name, ReservedEnvPrefix, strings.Join(ReservedEnv, " and ")))
		}
	}
	return diags
}

// envKeyRange is the range of the key name in the literal object of attr,
// or attr's expression when it is not one.
func envKeyRange(attr *hcl.Attribute, name string) hcl.Range {
	if oc, ok := attr.Expr.(*hclsyntax.ObjectConsExpr); ok {
		for _, item := range oc.Items {
			key := keyword(item.KeyExpr)
			if key == "" {
				if k, ok := item.KeyExpr.(*hclsyntax.ObjectConsKeyExpr); ok {
					if v, ok := literalString(k.Wrapped); ok {
						key = v.AsString()
					}
				}
			}
			if key == name {
				return item.KeyExpr.Range()
			}
		}
	}
	return attr.Expr.Range()
}
