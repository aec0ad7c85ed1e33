package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
)

// probe connects to the daemon's socket and asks it to stop plug victim,
// writing the HTTP answer to the file its first argument names.
const probe = `import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[2])
body = b'{"plug":"victim","instance":"default"}'
s.sendall(b"POST /v1/stop HTTP/1.1\r\nHost: plugs\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
open(sys.argv[1] + ".tmp", "wb").write(out)
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
`

// TestPluginMayNotDriveTheDaemon: a plugin's process, and an orphan it
// left (setsid, adopted by the daemon), connect to the daemon's socket as
// root (or the daemon's user): both are refused, the plug they tried to
// stop keeps running, and a client that is not a plugin still is served.
func TestPluginMayNotDriveTheDaemon(t *testing.T) {
	needTools(t, "python3", "setsid")
	dir := t.TempDir()
	state := filepath.Join(dir, ".plugs")
	sock := api.SocketPath(state)
	writeFile(t, filepath.Join(dir, "probe.py"), probe)
	direct, orphan := filepath.Join(dir, "direct.out"), filepath.Join(dir, "orphan.out")
	writeFile(t, filepath.Join(dir, "plugs.hcl"), `plug "victim" {
  source = "./empty"
  plugin {
    command = ["sh", "-c", "exec sleep 600"]
  }
}

plug "evil" {
  source = "./empty"
  plugin {
    command = ["sh", "-c", "setsid -f python3 `+dir+`/probe.py `+orphan+` `+sock+`; python3 `+dir+`/probe.py `+direct+` `+sock+`; exec sleep 600"]
  }
}
`)
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := startDaemon(t, Options{File: filepath.Join(dir, "plugs.hcl"), StateDir: state})
	waitStatus(t, c, "victim and evil running", func(s *api.Status) bool { return len(pids(s)) == 2 })
	for _, out := range []string{direct, orphan} {
		var answer []byte
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if b, err := os.ReadFile(out); err == nil {
				answer = b
				break
			}
		}
		if !strings.HasPrefix(string(answer), "HTTP/1.1 403") || !strings.Contains(string(answer), "plugins may not drive the daemon") {
			t.Errorf("%s: the daemon answered a plugin's stop with:\n%s\nwant 403, refused as a plugin's process", filepath.Base(out), answer)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("a client that is no plugin: %v", err)
	}
	if v := statusOf(st, "victim", "default"); v == nil || v.State != "running" {
		t.Errorf("victim after the plugins' stop requests: %+v, want running", v)
	}
}
