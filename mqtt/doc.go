// Package mqtt owns the connection to the MQTT broker, the publishing of
// host and instance state, and the embedded broker used when plugs.hcl
// declares none.
//
// Topics (host and names escaped by EscapeTopicSegment), all QoS 1:
//
//	plugs/<host>/status                    retained: "online", or "offline" (also the last will)
//	plugs/<host>/reconcile                 retained JSON: {result: success|error, error, revision, at}
//	plugs/<host>/<plug>/<instance>/state   retained JSON: {state, pid, version, revision, restarts, since}
//	plugs/<host>/<plug>/<instance>/data    not retained: what the instance publishes
//
// The reconcile topic is the MQTT side of a reconcile's outcome (beside the
// log, plugs_reconcile_total and plugs status): the daemon publishes it
// after every reconcile, its error text redacted of secrets.
//
// It never blocks the reconciler or the supervisor: publishing goes through
// a bounded queue of one message per topic (a newer retained payload
// replaces the one still waiting) that drops the oldest message when the
// broker is away, sent with a window of acknowledged publishes. On the
// embedded broker the daemon's messages are published in the broker's own
// process instead (Config.Local, Embedded.Publish): retained and handed to
// the subscribers with no round trip, while the connection still carries
// the data subscriptions and the last will.
package mqtt
