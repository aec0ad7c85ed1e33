#!/usr/bin/env python3
"""notify-sms: one notification per run.

Reads {"to": "+4912345", "text": "..."} on stdin (optionally "delay": seconds,
to show timeouts), writes one JSON answer on stdout. The instance's config
(params, secrets) comes from $PLUGS_CONFIG, like a long-running plugin's.
"""
import json
import os
import re
import sys
import time


def fail(msg):
    print(json.dumps({"error": msg}))
    print("notify-sms: " + msg, file=sys.stderr)
    sys.exit(2)


def main():
    with open(os.environ["PLUGS_CONFIG"]) as f:
        params = json.load(f)["params"]
    raw = sys.stdin.read()
    path = os.environ.get("PLUGS_INPUT", "")
    if path:
        with open(path) as f:
            if f.read() != raw:
                fail("PLUGS_INPUT does not hold the input")
    try:
        req = json.loads(raw)
    except ValueError as e:
        fail("the input is not JSON: %s" % e)
    if not isinstance(req, dict):
        fail("the input must be a JSON object")
    to, text = req.get("to"), req.get("text")
    if not isinstance(to, str) or not re.fullmatch(r"\+?[0-9]{4,15}", to):
        fail('"to" must be a phone number such as +4912345678')
    if not isinstance(text, str) or not text:
        fail('"text" must be a non-empty string')
    delay = req.get("delay", 0)
    if delay:
        time.sleep(float(delay))
    msg = {
        "id": os.environ.get("PLUGS_RUN_ID", ""),
        "from": params.get("sender", "plugs"),
        "to": to,
        "text": text,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    outbox = params.get("outbox", "")
    if outbox:
        with open(outbox, "a") as f:
            f.write(json.dumps(msg) + "\n")
    print(json.dumps({
        "status": "sent",
        "id": msg["id"],
        "to": to,
        "parts": (len(text) + 159) // 160,
        "authenticated": bool(params.get("gateway_token")),
        "instance": os.environ.get("PLUGS_INSTANCE", ""),
    }))


if __name__ == "__main__":
    main()
