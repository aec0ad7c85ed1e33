plug "hr" {
  source = "./empty-plugin"
  params = {
    interval = "5s"
    intervall = "5s" # ERROR: Unsupported param
    token = 42
  }
  instance "p1" { # ERROR: Missing required param
    params = { count = "many" } # ERROR: Invalid param value
  }
  instance "p2" {
    params = { device_id = "A1", tags = "x" } # ERROR: Invalid param value
  }
  plugin {
    command = ["./hr"]
    param "device_id" {
      type     = string
      required = true
    }
    param "interval" {
      type    = string
      default = "10s"
    }
    param "count" {
      type = number
    }
    param "tags" {
      type = list(string)
    }
    param "token" {
      type   = string
      secret = true
    }
  }
}
plug "default-instance" { # ERROR: Missing required param
  source = "./empty-plugin"
  plugin {
    command = ["./x"]
    param "needed" {
      type     = number
      required = true
    }
  }
}
