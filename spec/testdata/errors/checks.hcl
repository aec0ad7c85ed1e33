plug "a" {
  source = "./plugins/a"
  plugin {
    command = ["./a"]
    check "ready" {
      type = "notify"
    }
    update {} # ERROR: Unsupported block type
  }
  check "web" {
    type     = "htp" # ERROR: Invalid check type
  }
  check "web2" {
    type        = "http"
    url         = "ftp://x" # ERROR: Invalid check URL
    expect_body = "(" # ERROR: Invalid regular expression
  }
  check "port" { # ERROR: Missing required argument
    type   = "tcp"
    within = "1s" # ERROR: Unsupported argument
  }
  check "port2" {
    type    = "tcp"
    address = "localhost" # ERROR: Invalid check address
  }
  check "fresh" {
    type     = "data"
    within   = "0s" # ERROR: Invalid duration
    failures = 0 # ERROR: Invalid failures
  }
  check "probe" {
    type     = "exec"
    command  = ["./probe"]
    interval = "1s" # ERROR: Timeout longer than interval
    timeout  = "2s"
  }
  check "probe" { # ERROR: Duplicate check block
    type    = "exec"
    command = ["./probe"]
  }
  check "bad name!" { # ERROR: Invalid check name
    type = "notify"
  }
  check_restart {
    limit = 0 # ERROR: Invalid limit
  }
  update { # ERROR: Invalid update block
    max_parallel     = 0 # ERROR: Invalid max_parallel
    min_healthy_time = "10m"
  }
}
