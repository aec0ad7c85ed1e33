plugin "door-sensor" {
  version     = "0.4.1"
  description = "Watches a GPIO door contact"
  kind        = "compiled"
  command     = ["./door-sensor", "--gpio"]
  permissions = ["gpio", "mqtt:publish"]

  hooks {
    pre_start  = ["./door-sensor", "--check"]
    post_start = ["logger", "door-sensor started"]
    pre_stop   = ["./door-sensor", "--release"]
  }

  param "pin" {
    type    = number
    default = 17
  }
  param "label" {
    type    = string
    default = "front door"
  }
  param "inverted" {
    type    = bool
    default = false
  }
  param "topics" {
    type    = list(string)
    default = ["doors", "alarms"]
  }
  param "labels" {
    type    = map(string)
    default = { room = "hall" }
  }
}
