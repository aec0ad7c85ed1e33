host = "edge/01" # ERROR: Invalid host
broker {
  url = "http//nowhere" # ERROR: Invalid broker URL
}
plug "bad name" { # ERROR: Invalid plug name
  source = "git::https://example.org/a.git"
  env    = { A = ["x"] } # ERROR: Incorrect attribute value type
  instance "../up" {} # ERROR: Invalid instance name
}
plug "b" {
  source = "ftp://example.org/b" # ERROR: Invalid plug source
  plugin {
    kind        = "binary" # ERROR: Invalid plugin kind
    command     = [] # ERROR: Empty command
    stop_signal = "SIGFOO" # ERROR: Invalid stop signal
    param "p" {
      type = strin # ERROR: Invalid type specification
    }
    param "p" { # ERROR: Duplicate param block
      type = string
    }
  }
}
plug "local" {
  source  = "./empty-plugin"
  version = "1.0.0" # WARNING: Version of a local source is ignored
  plugin {
    command = ["true"]
  }
}
