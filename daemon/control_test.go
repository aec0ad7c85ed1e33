package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/plugs-dev/plugs/api"
)

// postControl calls POST /v1/stop, /v1/start or /v1/kill over the socket.
func postControl(t *testing.T, c *api.Client, path, plug, inst string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", c.Socket())
	}}}
	defer hc.CloseIdleConnections()
	body, _ := json.Marshal(api.RestartRequest{Plug: plug, Instance: inst})
	resp, err := hc.Post("http://plugs"+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp.StatusCode, out.String()
}

// TestStopStartKillByHand: stop is an override shown in status until the
// next apply, start ends it, kill SIGKILLs the group and the restart policy
// brings the instance back; the other instance keeps its pid throughout.
func TestStopStartKillByHand(t *testing.T) {
	dir := t.TempDir()
	for name, content := range sleeperPlugin {
		writeFile(t, dir+"/"+name, content)
	}
	writeFile(t, dir+"/plugs.hcl", sleeperDeployment(map[string]string{"a": "1s", "b": "2s"}))
	c := startDaemon(t, Options{File: dir + "/plugs.hcl", StateDir: dir + "/.plugs", NoWatch: true})
	st := waitStatus(t, c, "two running", func(s *api.Status) bool {
		return len(s.Instances) == 2 && s.Instances[0].PID > 0 && s.Instances[1].PID > 0
	})
	bPID := statusOf(st, "b", "default").PID
	aPID := statusOf(st, "a", "default").PID

	if code, body := postControl(t, c, "/v1/stop", "a", "default"); code != 200 {
		t.Fatalf("stop: %d %s", code, body)
	}
	st = waitStatus(t, c, "a stopped by hand", func(s *api.Status) bool {
		a := statusOf(s, "a", "default")
		return a != nil && a.State == "stopped" && a.PID == 0 && strings.Contains(a.Reason, "by hand")
	})
	if alive(aPID) {
		t.Errorf("pid %d of a still runs", aPID)
	}
	if code, _ := postControl(t, c, "/v1/start", "b", "default"); code != http.StatusBadRequest {
		t.Errorf("start of a running instance: %d", code)
	}
	if code, body := postControl(t, c, "/v1/start", "a", "default"); code != 200 {
		t.Fatalf("start: %d %s", code, body)
	}
	st = waitStatus(t, c, "a running again", func(s *api.Status) bool {
		a := statusOf(s, "a", "default")
		return a != nil && a.State == "running" && a.PID > 0
	})

	// Stopped by hand, then an apply: it runs again.
	postControl(t, c, "/v1/stop", "a", "default")
	waitStatus(t, c, "a stopped", func(s *api.Status) bool { return statusOf(s, "a", "default").State == "stopped" })
	rep, err := c.Apply(context.Background())
	if err != nil || rep.Started != 1 {
		t.Fatalf("apply: %+v %v", rep, err)
	}
	waitStatus(t, c, "a running after apply", func(s *api.Status) bool {
		a := statusOf(s, "a", "default")
		return a.State == "running" && a.PID > 0 && !strings.Contains(a.Reason, "by hand")
	})

	// Kill: the restart policy restarts it (the first crash at once).
	st, _ = c.Status(context.Background())
	old := statusOf(st, "a", "default").PID
	if code, body := postControl(t, c, "/v1/kill", "a", "default"); code != 200 {
		t.Fatalf("kill: %d %s", code, body)
	}
	st = waitStatus(t, c, "a restarted after kill", func(s *api.Status) bool {
		a := statusOf(s, "a", "default")
		return a.PID > 0 && a.PID != old && a.LastExit != nil && a.LastExit.Signal == "SIGKILL"
	})
	if alive(old) {
		t.Errorf("killed pid %d still runs", old)
	}
	if got := statusOf(st, "b", "default").PID; got != bPID {
		t.Errorf("b changed pid %d -> %d", bPID, got)
	}
	if code, _ := postControl(t, c, "/v1/kill", "nope", "default"); code != http.StatusBadRequest {
		t.Errorf("kill of an unknown instance: %d", code)
	}
}
