# A simulated heart-rate strap: publishes one Open mHealth heart-rate 2.0 data
# point (header 1.2) to its data topic every `interval`.
plugin "heart-rate" {
  version      = "1.0.0"
  uuid         = "5f0c8a4e-3b1d-4c6e-9a72-1d8e4b6f2c90"
  description  = "Simulated heart-rate strap publishing Open mHealth heart-rate 2.0 data points"
  instructions = "Set device_id to the strap's address; token is the strap vendor's API token, if it needs one."
  kind         = "compiled"
  build        = ["go", "build", "-trimpath", "-o", "heart-rate", "."]
  command      = ["./heart-rate"]
  exports      = "omh:heart-rate:2.0"
  permissions  = ["mqtt:publish"] # its broker only: no other network, no file outside its instance dir

  param "device_id" {
    type        = string
    required    = true
    description = "strap MAC address or serial number"
  }
  param "interval" {
    type        = string
    default     = "5s"
    description = "time between two data points, a Go duration"
  }
  param "token" {
    type        = string
    secret      = true
    description = "vendor API token (never logged)"
  }
  param "baseline_bpm" {
    type        = number
    default     = 70
    description = "resting heart rate the simulation wanders around"
  }

  stop_signal = "SIGTERM"

  # Ready once connected to the broker (sd_notify READY=1 on $NOTIFY_SOCKET);
  # healthy while it publishes at least once a minute.
  check "ready" {
    type = "notify"
  }
  check "fresh" {
    type   = "data"
    within = "1m"
  }
}
