variable "site" { default = "ward-3" }
variable "port" {
  type    = number
  default = 1883
}

host = "edge-01"

broker {
  url      = "tcp://mqtt.example.org:${var.port}"
  username = upper("plugs")
  password = env("PLUGS_MQTT_PASSWORD")
}

plug "heart-rate" {
  source  = "git::https://git.example.org/acme/heart-rate.git"
  version = "~> 1.2"
  params  = { interval = "5s", site = var.site }

  instance "patient-17" { params = { device_id = "A1:B2" } }
  instance "patient-22" { params = { device_id = "C3:D4" } }

  depends_on   = ["mqtt-bridge"]
  env          = { LOG_LEVEL = "info" }
  stop_timeout = "20s"
  restart {
    initial_delay = "2s"
    max_delay     = "2m"
    reset_after   = "10m"
    max_restarts  = 5
  }
  enabled = true
  user    = "nobody"
  limits {
    nofile       = 1024
    no_new_privs = true
  }
}

plug "mqtt-bridge" {
  source  = "git::https://git.example.org/tools/bridge.git//cmd/bridge"
  version = "3f2c1a9e0b7d4c5a8e6f1b2d3c4a5e6f7a8b9c0d"
  enabled = false
  plugin {
    kind    = "compiled"
    build   = ["go", "build", "-o", "bridge", "."]
    command = ["./bridge", "-config-from-env"]
    param "topics" {
      type    = list(string)
      default = [join("/", ["plugs", var.site])]
    }
  }
}
