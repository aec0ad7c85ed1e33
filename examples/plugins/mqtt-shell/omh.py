"""Helpers of the mqtt-shell plugin (python3 standard library only).

omh.py config CONFIG OPTDIR   print shell assignments: host port topic interval;
                              write OPTDIR/mosquitto_pub (mode 0600) with the
                              connection options, credentials included.
omh.py reading CONFIG         print one Open mHealth body-temperature 3.0 data point.
"""
import datetime
import json
import os
import random
import re
import shlex
import sys
import uuid


def load(path):
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    params = cfg.get("params") or {}
    return cfg, params


def param(params, name, default):
    """The param's value, or default when it is absent or null."""
    value = params.get(name)
    return default if value is None else value


def seconds(text):
    """Turn 10, "10", "10s", "5m", "1h", "1m30s" into seconds."""
    text = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError("interval %r is not a duration like 10s or 5m" % text)
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def config(path, optdir):
    cfg, params = load(path)
    broker = cfg.get("broker") or {}
    host = broker.get("host") or "127.0.0.1"
    port = str(broker.get("port") or 1883)
    topic = (cfg.get("topics") or {}).get("data")
    if not topic:
        raise ValueError("topics.data is missing from %s" % path)
    interval = seconds(param(params, "interval", "10s"))
    if interval <= 0:
        raise ValueError("interval must be positive")
    lines = ["-h %s" % host, "-p %s" % port,
             "-i mqtt-shell-%s" % (cfg.get("uuid") or os.getpid())]
    for key in ("host", "username", "password"):
        if "\n" in str(broker.get(key) or ""):
            raise ValueError("broker %s must not contain a newline" % key)
    if broker.get("username"):
        lines.append("-u %s" % broker["username"])
    if broker.get("password"):
        lines.append("-P %s" % broker["password"])
    fd = os.open(os.path.join(optdir, "mosquitto_pub"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    for name, value in (("host", host), ("port", port), ("topic", topic), ("interval", "%g" % interval)):
        print("%s=%s" % (name, shlex.quote(value)))


def reading(path):
    cfg, params = load(path)
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    baseline = float(param(params, "baseline_celsius", 36.8))
    point = {
        "header": {
            "id": str(uuid.uuid4()),
            "creation_date_time": now,
            "schema_id": {"namespace": "omh", "name": "body-temperature", "version": "3.0"},
            "acquisition_provenance": {"source_name": "plugs mqtt-shell thermometer", "modality": "sensed"},
            "user_id": cfg.get("instance", "default"),
        },
        "body": {
            "body_temperature": {"value": round(baseline + random.uniform(-0.4, 0.4), 1), "unit": "C"},
            "effective_time_frame": {"date_time": now},
            "measurement_location": param(params, "location", "axillary"),
        },
    }
    print(json.dumps(point))


def main(argv):
    try:
        if len(argv) == 4 and argv[1] == "config":
            config(argv[2], argv[3])
        elif len(argv) == 3 and argv[1] == "reading":
            reading(argv[2])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (OSError, ValueError) as e:
        print("mqtt-shell: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
