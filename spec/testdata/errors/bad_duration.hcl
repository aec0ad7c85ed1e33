plug "a" {
  source       = "git::https://example.org/a.git"
  stop_timeout = "10 seconds" # ERROR: Invalid duration
  restart {
    initial_delay = "fast" # ERROR: Invalid duration
    max_delay     = "-1s" # ERROR: Invalid duration
    max_restarts  = 1.5 # ERROR: Invalid number
  }
}
plug "b" {
  source = "git::https://example.org/b.git"
  restart { # ERROR: Invalid restart policy
    initial_delay = "2m"
    max_delay     = "1m"
  }
}
plug "c" {
  source       = "git::https://example.org/c.git"
  stop_timeout = "0s" # ERROR: Invalid duration
  restart {
    initial_delay = "0s" # ERROR: Invalid duration
    max_delay     = "0ms" # ERROR: Invalid duration
    reset_after   = "0h" # ERROR: Invalid duration
  }
}
plug "d" {
  source = "git::https://example.org/d.git"
  restart { # ERROR: Invalid restart policy
    initial_delay = "2m"
  }
}
