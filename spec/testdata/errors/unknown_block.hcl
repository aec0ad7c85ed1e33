plug "a" {
  source = "git::https://example.org/a.git"
  instanse "x" {} # ERROR: Unsupported block type
  restart {
    initial_delay = "1s"
  }
}
brokr { # ERROR: Unsupported block type
}
