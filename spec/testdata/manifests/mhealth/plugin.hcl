plugin "heart-rate" {
  uuid           = "4b8e2f5c-1d3a-4e6f-9a7b-2c8d0e1f3a5b"
  version        = "1.2.0"
  description    = "Reads a BLE heart-rate strap, publishes Open mHealth data points"
  instructions   = "Pair the strap first, then set device_id."
  kind           = "script"
  command        = ["python3", "main.py", "--quiet"]
  setup          = ["python3", "configure.py"]
  setup_required = true
  exports        = "omh:heart-rate:2.0"

  param "device_id" {
    type        = string
    required    = true
    description = "strap MAC address"
  }
  param "token" {
    type   = string
    secret = true
  }
  param "interval" {
    type    = string
    default = "10s"
  }
  param "retries" {
    type    = number
    default = 3
  }
  param "tags" {
    type    = list(string)
    default = ["ward"]
  }
}
