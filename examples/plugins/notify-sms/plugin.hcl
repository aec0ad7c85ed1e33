# A notification task: each call sends one message. It reads a JSON request
# on stdin ({"to": "+49…", "text": "…"}; the same bytes are in the file
# $PLUGS_INPUT), answers one JSON object on stdout and exits 0, or exits 2
# with {"error": "…"} when the request is wrong. plugs runs it per call
# (plugs exec, the task API, MQTT 5 request/response), never keeps it
# running. The "gateway" of this demo is a file: every message is appended
# to `outbox` as one JSON line.
plugin "notify-sms" {
  version     = "1.0.0"
  uuid        = "6a1e3c0b-52d4-4f7e-9a8b-1c2d3e4f5a6b"
  description = "Sends an SMS notification per call: a JSON request on stdin, a JSON answer on stdout"
  kind        = "script"
  command     = ["python3", "notify.py"]
  permissions = ["network.https"] # a real gateway is an HTTPS API; the demo's outbox file needs filesystem.write:DIR in the plug's sandbox block

  param "sender" {
    type        = string
    default     = "plugs"
    description = "the sender name the gateway shows"
  }
  param "gateway_token" {
    type        = string
    secret      = true
    default     = ""
    description = "the SMS gateway's API token (never in the answer, logs or status)"
  }
  param "outbox" {
    type        = string
    default     = ""
    description = "a file every sent message is appended to, one JSON line each; empty: none"
  }

  task {
    max_concurrent = 4
    timeout        = "30s"
  }
}
