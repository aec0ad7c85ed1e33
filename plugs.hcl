# The demo deployment: the three example plugins from examples/plugins/, on the
# embedded MQTT broker (no broker block: 127.0.0.1:1883), metrics on
# 127.0.0.1:9469. Start it with `make run`; examples/quickstart/README.md walks
# through it.

plug "heart-rate" {
  # A compiled Go plugin: `plugs build` runs its manifest's `go build`.
  source = "./examples/plugins/heart-rate"
  params = { interval = "5s" }

  # One instance per patient, each with its own strap.
  instance "patient-17" {
    params = { device_id = "A1:B2:C3:D4:E5:17", baseline_bpm = 64 }
  }
  instance "patient-22" {
    params = { device_id = "A1:B2:C3:D4:E5:22", baseline_bpm = 78 }
  }

  stop_timeout = "5s"
}

plug "mqtt-shell" {
  # A shell script publishing with mosquitto_pub (Debian: mosquitto-clients).
  source = "./examples/plugins/mqtt-shell"
  params = { interval = "10s", location = "oral" }
}

plug "legacy-step-count" {
  # A Python plugin described only by a legacy mHealth plugin.json.
  source = "./examples/plugins/legacy-step-count"
  params = { interval = "15s", steps_per_minute = 100 }
}
