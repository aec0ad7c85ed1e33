# A thermometer in a few lines of shell: publishes an Open mHealth
# body-temperature 3.0 data point with mosquitto_pub every `interval`.
# Needs python3 (to read $PLUGS_CONFIG) and mosquitto_pub (Debian:
# mosquitto-clients).
plugin "mqtt-shell" {
  version      = "1.0.0"
  uuid         = "0d3f6b2a-7c41-4e8b-b5a9-6e2c1f9d8a37"
  description  = "Simulated thermometer in shell, publishing Open mHealth body-temperature 3.0 with mosquitto_pub"
  instructions = "Install mosquitto-clients and python3 on the host."
  kind         = "script"
  command      = ["sh", "./run.sh"]
  permissions  = ["mqtt:publish"]
  exports      = "omh:body-temperature:3.0"

  param "interval" {
    type        = string
    default     = "10s"
    description = "time between two readings: 30s, 5m, or a number of seconds"
  }
  param "location" {
    type        = string
    default     = "axillary"
    description = "measurement_location of the body-temperature schema"
  }
  param "baseline_celsius" {
    type    = number
    default = 36.8
  }

  stop_signal = "SIGTERM"
}
