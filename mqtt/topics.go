package mqtt

import "strings"

// StatusTopic is the retained topic that says whether host's daemon is
// connected: "online", or "offline" (also its last will).
func StatusTopic(host string) string {
	return "plugs/" + EscapeTopicSegment(host) + "/status"
}

// RunTopic is the retained topic naming the current run of host's daemon
// (see RunMessage), published before "online" after every connect.
func RunTopic(host string) string {
	return "plugs/" + EscapeTopicSegment(host) + "/run"
}

// ReconcileTopic is the retained topic carrying the JSON outcome of the
// host daemon's last reconcile (see ReconcileMessage).
func ReconcileTopic(host string) string {
	return "plugs/" + EscapeTopicSegment(host) + "/reconcile"
}

// StateTopic is the retained topic carrying the JSON state of one instance.
func StateTopic(host, plug, instance string) string {
	return instanceTopic(host, plug, instance) + "/state"
}

// DataTopic is the topic an instance publishes its data points to (QoS 1,
// not retained).
func DataTopic(host, plug, instance string) string {
	return instanceTopic(host, plug, instance) + "/data"
}

func instanceTopic(host, plug, instance string) string {
	return "plugs/" + EscapeTopicSegment(host) + "/" + EscapeTopicSegment(plug) + "/" + EscapeTopicSegment(instance)
}

// EscapeTopicSegment makes name usable as exactly one level of an MQTT
// topic. The characters MQTT gives a meaning to ('/' separates levels, '+'
// and '#' are wildcards), NUL (forbidden), and '%' itself are
// percent-encoded, so distinct names stay distinct and the escaping can be
// undone. An empty name (which plugs.hcl never
// produces) becomes "_" so that no level is empty.
//
// Names that plugs.hcl accepts (letters, digits, '-', '_', '.') pass through
// unchanged.
func EscapeTopicSegment(name string) string {
	if name == "" {
		return "_"
	}
	if !strings.ContainsAny(name, "/+#%\x00") {
		return name
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '/', '+', '#', '%', 0:
			b.WriteString("%")
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&0xF])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
