# A plugin that crashes shortly after it starts, so that restarts and
# backoff show in metrics. Its token is a secret param.
plugin "flapper" {
  version = "0.1.0"
  kind    = "script"
  command = ["sh", "./run.sh"]

  param "token" {
    type     = string
    secret   = true
    required = true
  }
}
