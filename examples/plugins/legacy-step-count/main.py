"""legacy-step-count: an example plugs plugin described by a legacy plugin.json.

Every interval it publishes an Open mHealth step-count 2.0 data point (header
1.2) counting the steps of the interval just ended, with `mosquitto_pub -q 1`.
Python standard library only. Reads everything from $PLUGS_CONFIG.

    python3 main.py           run until SIGTERM
    python3 main.py --check   check the host and the config, then exit (the setup program)

The broker credentials reach mosquitto_pub through a private options file
($XDG_CONFIG_HOME/mosquitto_pub), never its command line, and are never logged;
neither is the api_key param.
"""
import datetime
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import uuid

stop = threading.Event()


def log(msg):
    print("legacy-step-count: " + msg, file=sys.stderr, flush=True)


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


def load_config():
    path = os.environ.get("PLUGS_CONFIG")
    if not path:
        raise ValueError("PLUGS_CONFIG is not set: run this plugin under plugs")
    with open(path, encoding="utf-8") as f:
        cfg = json.load(f)
    if not (cfg.get("topics") or {}).get("data"):
        raise ValueError("topics.data is missing from %s" % path)
    params = cfg.get("params") or {}
    interval = seconds(param(params, "interval", "15s"))
    if interval <= 0:
        raise ValueError("interval must be positive")
    cadence = float(param(params, "steps_per_minute", 90))
    if cadence < 0:
        raise ValueError("steps_per_minute must not be negative")
    return cfg, interval, cadence


def timestamp(t):
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def data_point(cfg, steps, start, end):
    return {
        "header": {
            "id": str(uuid.uuid4()),
            "creation_date_time": timestamp(end),
            "schema_id": {"namespace": "omh", "name": "step-count", "version": "2.0"},
            "acquisition_provenance": {"source_name": "plugs legacy-step-count pedometer", "modality": "sensed"},
            "user_id": cfg.get("instance", "default"),
        },
        "body": {
            "step_count": steps,
            "effective_time_frame": {
                "time_interval": {
                    "start_date_time": timestamp(start),
                    "end_date_time": timestamp(end),
                }
            },
        },
    }


def write_options(cfg, optdir):
    """Write mosquitto_pub's options file, credentials included, mode 0600."""
    broker = cfg.get("broker") or {}
    lines = ["-h %s" % (broker.get("host") or "127.0.0.1"),
             "-p %s" % (broker.get("port") or 1883),
             "-i legacy-step-count-%s" % (cfg.get("uuid") or os.getpid())]
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


def publish(topic, payload, optdir):
    env = dict(os.environ, XDG_CONFIG_HOME=optdir)
    try:
        done = subprocess.run(["mosquitto_pub", "-q", "1", "-t", topic, "-s"], input=payload.encode(),
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    except subprocess.TimeoutExpired:
        return "mosquitto_pub timed out"
    if done.returncode != 0:
        return done.stderr.decode(errors="replace").strip() or "exit %d" % done.returncode
    return None


def check():
    cfg, interval, cadence = load_config()
    if not shutil.which("mosquitto_pub"):
        raise ValueError("mosquitto_pub not found (apt-get install mosquitto-clients)")
    log("ok: publishing %g steps/min every %gs to %s" % (cadence, interval, cfg["topics"]["data"]))


def run():
    cfg, interval, cadence = load_config()
    if not shutil.which("mosquitto_pub"):
        raise ValueError("mosquitto_pub not found (apt-get install mosquitto-clients)")
    topic = cfg["topics"]["data"]
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with tempfile.TemporaryDirectory() as optdir:
        write_options(cfg, optdir)
        log("publishing to %s every %gs" % (topic, interval))
        start = datetime.datetime.now(datetime.timezone.utc)
        while not stop.wait(interval):
            end = datetime.datetime.now(datetime.timezone.utc)
            minutes = (end - start).total_seconds() / 60
            steps = max(0, round(random.gauss(cadence * minutes, cadence * minutes * 0.2)))
            err = publish(topic, json.dumps(data_point(cfg, steps, start, end)), optdir)
            if err and stop.is_set():
                break  # mosquitto_pub got the group's stop signal too
            if err:
                log("publish failed, retrying next interval: " + err)
            else:
                log("published %d steps" % steps)
            start = end
    log("stopping")


def main(argv):
    try:
        if argv[1:] == ["--check"]:
            check()
        elif argv[1:] == []:
            run()
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (OSError, ValueError) as e:
        log(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
