// Package mqtt owns the connection to the MQTT broker, the publishing of
// host and instance state, and the embedded broker used when plugs.hcl
// declares none.
//
// It never blocks the reconciler or the supervisor: publishing goes through
// a bounded queue that drops the oldest message when the broker is away.
package mqtt
