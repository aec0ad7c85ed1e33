plug "a" {
  source = "git::https://example.org/a.git"
  instance "x" {}
  instance "x" {} # ERROR: Duplicate instance block
}
plug "a" { # ERROR: Duplicate plug block
  source = "git::https://example.org/b.git"
}
broker {
  url = "tcp://127.0.0.1:1883"
}
broker { # ERROR: Duplicate broker block
  url = "tcp://127.0.0.1:1884"
}
variable "v" { default = 1 }
variable "v" { default = 2 } # ERROR: Duplicate variable block
