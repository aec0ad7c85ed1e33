import json, os, time

cfg = json.load(open(os.environ["PLUGS_CONFIG"]))
while True:
    print("reading", cfg["params"].get("port"), flush=True)
    time.sleep(float(cfg["params"].get("interval", 30)))
