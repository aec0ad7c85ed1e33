import json, os, time

import serial  # pyserial, from requirements.txt / "dependencies"

cfg = json.load(open(os.environ["PLUGS_CONFIG"]))
params = cfg.get("params", {})
while True:
    print("reading", params.get("port"), "pyserial", serial.VERSION, flush=True)
    time.sleep(float(params.get("interval", 30)))
