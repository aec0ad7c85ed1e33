plug "a" { # ERROR: Missing required argument
  version = "1.0.0"
}
