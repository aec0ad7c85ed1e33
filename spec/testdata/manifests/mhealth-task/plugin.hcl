plugin "notify-sms" {
  uuid        = "6a1e3c0b-52d4-4f7e-9a8b-1c2d3e4f5a6b"
  version     = "1.0.0"
  description = "Sends an SMS notification per call"
  kind        = "script"
  command     = ["python3", "notify.py"]

  param "gateway_token" {
    type    = string
    secret  = true
    default = ""
  }

  task {
    max_concurrent = 4
    queue          = 0
    timeout        = "30s"
    max_timeout    = "5m"
    output_limit   = "64KiB"
    max_output     = 1048576
    history        = 50
  }
  schedule {
    cron       = "*/5 * * * *"
    time_zone  = "UTC"
    persistent = true
    jitter     = "10s"
    overlap    = true
    input      = "{\"text\":\"daily report\",\"to\":\"+4912345678\"}" # plugin.json: the object itself
  }
  schedule {
    every = "1h"
    input = "ping"
  }
}
