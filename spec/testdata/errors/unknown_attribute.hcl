plug "a" {
  source  = "git::https://example.org/a.git"
  enabeld = true # ERROR: Unsupported argument
  plugin {
    command = ["true"]
    comand  = ["x"] # ERROR: Unsupported argument
  }
}
hots = "edge" # ERROR: Unsupported argument
