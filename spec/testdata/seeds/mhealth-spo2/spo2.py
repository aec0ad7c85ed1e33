import json, os, time

cfg = json.load(open(os.environ["PLUGS_CONFIG"]))
params = cfg.get("params", {})
while True:
    print("spo2 device", params.get("device_id"), flush=True)
    time.sleep(5)
