package mqtt

import "strings"

// aclRule grants one role read or write access to the topics a filter
// matches. In filters, {plug} and {instance} stand for the account's own
// names (escaped with EscapeTopicSegment), and the host level is a '+':
// every account of an embedded broker belongs to the one daemon that runs it.
type aclRule struct {
	role   Role
	write  bool // false: read (subscribe and receive)
	filter string
}

// aclRules is the embedded broker's whole access policy, in one place.
// What is not granted here is refused. New rules for what instances need to
// read (requests addressed to them, say) belong here too.
var aclRules = []aclRule{
	// The daemon publishes the host status (and its last will), run,
	// reconcile and state topics, and reads everything (health checks on
	// data topics).
	{RoleDaemon, true, "plugs/#"},
	{RoleDaemon, false, "#"},

	// Operators' subscribers (mosquitto_sub, dashboards) read everything.
	{RoleReader, false, "#"},

	// An instance publishes its own data topic only, and reads its own
	// topics and its host's status.
	{RoleInstance, true, "plugs/+/{plug}/{instance}/data"},
	{RoleInstance, false, "plugs/+/{plug}/{instance}/#"},
	{RoleInstance, false, "plugs/+/status"},

	// Task callers publish calls to exec topics and read the answers below
	// plugs/<host>/replies/ (mqtt/exec.go).
	{RoleCaller, true, "plugs/+/+/+/exec"},
	{RoleCaller, false, "plugs/+/replies/#"},
}

// allowed reports whether acct may write to topic, or read it. A read of a
// filter with wildcards (a subscribe) is allowed when some read rule of the
// role could match: each message it would deliver is checked again by its
// topic name before it is sent.
func allowed(acct Account, topic string, write bool) bool {
	if acct.Role == RoleNone || topic == "" {
		return false
	}
	wild := strings.ContainsAny(topic, "+#")
	if write && wild {
		return false
	}
	for _, r := range aclRules {
		if r.role != acct.Role || r.write != write {
			continue
		}
		f := strings.NewReplacer("{plug}", EscapeTopicSegment(acct.Plug), "{instance}", EscapeTopicSegment(acct.Instance)).Replace(r.filter)
		if wild {
			if filtersOverlap(f, topic) {
				return true
			}
			continue
		}
		if topicMatches(f, topic) {
			return true
		}
	}
	return false
}

// topicMatches reports whether filter (with + and # wildcards) matches the
// topic name topic. Topics starting with '$' match no wildcard at their
// first level, as MQTT says.
func topicMatches(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		if f == "#" {
			return true
		}
		if i >= len(ts) || (f != "+" && f != ts[i]) {
			return false
		}
	}
	return len(fs) == len(ts)
}

// filtersOverlap reports whether some topic name matches both filters.
func filtersOverlap(a, b string) bool {
	as, bs := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, y := as[i], bs[i]
		if x == "#" || y == "#" {
			return true
		}
		if x != "+" && y != "+" && x != y {
			return false
		}
	}
	return len(as) == len(bs) ||
		(len(as) == len(bs)+1 && as[len(as)-1] == "#") ||
		(len(bs) == len(as)+1 && bs[len(bs)-1] == "#")
}
