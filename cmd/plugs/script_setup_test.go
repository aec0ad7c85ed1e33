package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/rogpeppe/go-internal/testscript"
)

// scriptSetup prepares the environment of every testscript. Commands may
// add conditions and helpers here as they need them.
//
// A daemon started by a script (exec plugs run &) listens on free ports:
// PLUGS_METRICS_ADDR and PLUGS_BROKER_ADDR are 127.0.0.1:0, so scripts run
// in parallel. $WORK/.bin, first in PATH, holds plugstest (see plugstestPy).
func scriptSetup(env *testscript.Env) error {
	env.Setenv("HOME", env.WorkDir)
	env.Setenv("PLUGS_METRICS_ADDR", "127.0.0.1:0")
	env.Setenv("PLUGS_BROKER_ADDR", "127.0.0.1:0")
	env.Setenv("PLUGS_UI_ADDR", "127.0.0.1:0")
	// The sandbox would run plugins as users plugs creates, who cannot reach
	// $WORK (0700); sandbox.txtar turns it back on with user = "root".
	env.Setenv("PLUGS_SANDBOX", "false")
	bin := filepath.Join(env.WorkDir, ".bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(bin, "plugstest"), []byte(strings.TrimLeft(plugstestPy, "\n")), 0o755); err != nil {
		return err
	}
	env.Setenv("PATH", bin+string(os.PathListSeparator)+env.Getenv("PATH"))
	return nil
}

// plugstestPy is a helper for scripts that drive a daemon; it reads
// `plugs status -o json` of the state dir ($PLUGS_STATE_DIR, default
// $WORK/.plugs) and fails after 60s of waiting:
//
//	plugstest wait-daemon              the daemon answers and reconciled once
//	plugstest wait-running ID...       each PLUG/INSTANCE runs with a pid
//	plugstest wait-gone ID...          none of them is known any more
//	plugstest wait-failed              the last reconcile failed
//	plugstest wait-ok                  the last reconcile succeeded
//	plugstest save-pids                remember every instance's pid (in $WORK/.pids.json)
//	plugstest wait-pid-changed ID...   each runs with another pid than saved
//	plugstest pids-unchanged [ID...]   each (default: every saved one) keeps its saved pid
//	plugstest pids-dead                no saved pid is alive
//	plugstest signal-daemon SIG        send SIG (e.g. TERM, HUP) to the daemon
//	plugstest wait-rollout PLUG STATE  the plug's rollout is in STATE (healthy, reverted, ...)
//	plugstest wait-reason ID REGEX     the instance's status reason matches REGEX
//	plugstest wait-file FILE           FILE exists
//	plugstest pidfile-dead FILE        the pid written in FILE is not alive (gone or a zombie)
//	plugstest exit-code N CMD...       CMD exits with code N (its output passes through)
const plugstestPy = `
#!/usr/bin/env python3
import json, os, subprocess, sys, time

WORK = os.environ.get("WORK", ".")
PIDS = os.path.join(WORK, ".pids.json")
TIMEOUT = 60

def status():
    args = ["plugs", "status", "-o", "json"]
    if os.environ.get("PLUGS_STATE_DIR"):
        args += ["--state-dir", os.environ["PLUGS_STATE_DIR"]]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        return None
    return json.loads(p.stdout)

def instances(st):
    return {i["plug"] + "/" + i["instance"]: i for i in st.get("instances", [])}

def wait(what, pred):
    deadline = time.monotonic() + TIMEOUT
    last = None
    while time.monotonic() < deadline:
        last = status()
        if last is not None and pred(last):
            return
        time.sleep(0.1)
    sys.exit("plugstest: timed out waiting for %s; last status:\n%s" % (what, json.dumps(last, indent=1)))

def saved():
    with open(PIDS) as f:
        return json.load(f)

def running(i):
    return i is not None and i["state"] == "running" and i.get("pid", 0) > 0

def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

cmd, ids = sys.argv[1], sys.argv[2:]
if cmd == "wait-daemon":
    wait("the daemon", lambda s: s["daemon"].get("last_reconcile") is not None)
elif cmd == "wait-running":
    wait("running " + " ".join(ids), lambda s: all(running(instances(s).get(i)) for i in ids))
elif cmd == "wait-gone":
    wait("gone " + " ".join(ids), lambda s: not any(i in instances(s) for i in ids))
elif cmd == "wait-failed":
    wait("a failed reconcile", lambda s: (s["daemon"].get("last_reconcile") or {}).get("error"))
elif cmd == "wait-ok":
    wait("a good reconcile", lambda s: s["daemon"].get("last_reconcile") and not s["daemon"]["last_reconcile"].get("error"))
elif cmd == "save-pids":
    st = status() or sys.exit("plugstest: no daemon")
    with open(PIDS, "w") as f:
        json.dump({k: i.get("pid", 0) for k, i in instances(st).items()}, f)
elif cmd == "wait-pid-changed":
    old = saved()
    wait("new pids of " + " ".join(ids), lambda s: all(running(instances(s).get(i)) and instances(s)[i]["pid"] != old.get(i) for i in ids))
elif cmd == "pids-unchanged":
    old, now = saved(), instances(status() or sys.exit("plugstest: no daemon"))
    for i in ids or old:
        got = now.get(i, {}).get("pid")
        if got != old.get(i):
            sys.exit("plugstest: %s pid %s, was %s" % (i, got, old.get(i)))
elif cmd == "pids-dead":
    left = [k + ":" + str(p) for k, p in saved().items() if p and alive(p)]
    if left:
        sys.exit("plugstest: still alive: " + ", ".join(left))
elif cmd == "wait-rollout":
    def rollout(s):
        return {r["plug"]: r for r in s.get("rollouts") or []}.get(ids[0], {}).get("state")
    wait("rollout of %s %s" % (ids[0], ids[1]), lambda s: rollout(s) == ids[1])
elif cmd == "wait-reason":
    import re
    wait("%s with a reason matching %s" % (ids[0], ids[1]),
         lambda s: re.search(ids[1], (instances(s).get(ids[0]) or {}).get("reason") or "") is not None)
elif cmd == "wait-file":
    deadline = time.monotonic() + TIMEOUT
    while not os.path.exists(ids[0]):
        if time.monotonic() > deadline:
            sys.exit("plugstest: no file " + ids[0])
        time.sleep(0.05)
elif cmd == "pidfile-dead":
    pid = int(open(ids[0]).read().strip())
    if alive(pid):
        sys.exit("plugstest: pid %d of %s is alive" % (pid, ids[0]))
elif cmd == "exit-code":
    p = subprocess.run(ids[1:])
    if p.returncode != int(ids[0]):
        sys.exit("plugstest: %s exited %d, want %s" % (" ".join(ids[1:]), p.returncode, ids[0]))
elif cmd == "signal-daemon":
    import signal
    st = status() or sys.exit("plugstest: no daemon")
    os.kill(st["daemon"]["pid"], getattr(signal, "SIG" + ids[0]))
else:
    sys.exit("plugstest: unknown command " + cmd)
`
