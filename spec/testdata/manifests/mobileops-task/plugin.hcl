plugin "nightly-export" {
  version     = "2.0.0"
  description = "Exports the day's readings once a night"
  kind        = "script"
  command     = ["python3", "export.py"]

  param "target" {
    type    = string
    default = "/srv/exports"
  }

  schedule {
    cron = "30 2 * * *"
  }
}
