plug "a" {
  source = "./plugins/a"
  plugin {
    command = ["./a"]
    task {
      max_concurrent = 0 # ERROR: Invalid number
      timeout        = "0s" # ERROR: Invalid duration
    }
  }
  task {
    timeout      = "1m"
    max_timeout  = "10s" # ERROR: Invalid max_timeout
    output_limit = "64 parsecs" # ERROR: Invalid size
    queue        = -1 # ERROR: Invalid number
  }
  task {} # ERROR: Duplicate task block
  schedule {
    cron = "61 * * * *" # ERROR: Invalid cron expression
  }
  schedule {
    cron  = "@daily"
    every = "1m" # ERROR: Conflicting schedule
  }
  schedule { # ERROR: Missing schedule
    persistent = true
  }
  schedule {
    every = "100ms" # ERROR: Interval too short
  }
  schedule {
    cron      = "@hourly"
    time_zone = "Mars/Olympus" # ERROR: Invalid time zone
    jitter    = "soon" # ERROR: Invalid duration
  }
}
plug "b" {
  source = "./plugins/b"
  plugin {
    command = ["./b"]
  }
  task {
    output_limit = 1024
    max_output   = "512B" # ERROR: Invalid max_output
  }
}
