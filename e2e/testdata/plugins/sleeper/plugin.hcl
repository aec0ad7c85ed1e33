# A plugin that only sleeps: its pid is the instance's pid. Its token is a
# secret param.
plugin "sleeper" {
  version = "0.1.0"
  kind    = "script"
  command = ["sh", "./run.sh"]

  param "token" {
    type     = string
    secret   = true
    required = true
  }
}
