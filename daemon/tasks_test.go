package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/internal/mqtttest"
	"github.com/plugs-dev/plugs/task"
)

// taskDeployment is the notify-sms example and two shell tasks: one that
// forks a grandchild and outlives its timeout, one that counts how many of
// its runs are alive at once.
func taskDeployment(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join("..", "examples", "plugins", "notify-sms")
	for _, name := range []string{"plugin.hcl", "notify.py"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "plugins", "notify-sms", name), string(b))
	}
	writeFile(t, filepath.Join(dir, "plugins", "hang", "plugin.hcl"), `plugin "hang" {
  command = ["sh", "-c", "sleep 300 & echo $! > \"$GC_FILE\"; sleep 300"]
  task {
    timeout = "1s"
  }
}
`)
	writeFile(t, filepath.Join(dir, "plugins", "count", "plugin.hcl"), `plugin "count" {
  command = ["sh", "./count.sh"]
  task {}
}
`)
	// mkdir is atomic: the entries of live/ are the runs alive now.
	writeFile(t, filepath.Join(dir, "plugins", "count", "count.sh"), `mkdir "$LIVE/$PLUGS_RUN_ID"
n=$(ls "$LIVE" | wc -l)
echo "$n" >> "$SEEN"
sleep 0.2
rmdir "$LIVE/$PLUGS_RUN_ID"
echo "{\"seen\": $n}"
`)
	os.MkdirAll(filepath.Join(dir, "live"), 0o755)
	file := filepath.Join(dir, "plugs.hcl")
	writeFile(t, file, fmt.Sprintf(`plug "notify-sms" {
  source = "./plugins/notify-sms"
  params = { sender = "ward-3", gateway_token = "planted-secret-token", outbox = %q }
}
plug "hang" {
  source = "./plugins/hang"
  env    = { GC_FILE = %q }
  stop_timeout = "1s"
}
plug "count" {
  source = "./plugins/count"
  env    = { LIVE = %q, SEEN = %q }
  task {
    max_concurrent = 4
    queue          = 16
    history        = 500
  }
}
plug "tick" {
  source = "./plugins/count"
  env    = { LIVE = %q, SEEN = %q }
  schedule {
    every  = "1s"
    jitter = "0s"
  }
}
`, filepath.Join(dir, "outbox"), filepath.Join(dir, "gc.pid"), filepath.Join(dir, "live"), filepath.Join(dir, "seen"),
		filepath.Join(dir, "tick-live"), filepath.Join(dir, "tick-seen")))
	os.MkdirAll(filepath.Join(dir, "tick-live"), 0o755)
	return file
}

func TestTasksEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 not installed (run scripts/test-deps.sh)")
	}
	dir := t.TempDir()
	file := taskDeployment(t, dir)
	tokens := filepath.Join(dir, "tokens")
	writeFile(t, tokens, "# the main server\nmain-server-token\n")
	apiAddr := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(t))
	stateDir := filepath.Join(dir, ".plugs")
	c := startDaemon(t, Options{File: file, StateDir: stateDir, NoWatch: true, APIAddr: apiAddr, APITokenFile: tokens, Logger: testLogger(t), UIAddr: "127.0.0.1:0"})
	tc := task.UnixClient(api.SocketPath(stateDir))
	defer tc.HTTP.CloseIdleConnections()
	ctx := t.Context()

	// Tasks are not kept running: status shows them idle, with no pid.
	st := waitStatus(t, c, "the tasks", func(s *api.Status) bool { return statusOf(s, "notify-sms", "default") != nil })
	if row := statusOf(st, "notify-sms", "default"); row.State != "idle" || row.PID != 0 || !strings.Contains(row.Reason, "task") {
		t.Fatalf("notify-sms row: %+v", row)
	}

	t.Run("exec through the local API", func(t *testing.T) {
		res, err := tc.Exec(ctx, "notify-sms", "", []byte(`{"to": "+4912345678", "text": "bed 4 needs a nurse"}`), task.ExecOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var answer map[string]any
		if err := json.Unmarshal(res.Output, &answer); err != nil || res.OutputType != task.OutputJSON {
			t.Fatalf("answer %s (%s): %v", res.Output, res.OutputType, err)
		}
		if res.Result != task.ResultSuccess || answer["status"] != "sent" || answer["authenticated"] != true || answer["id"] != res.RunID {
			t.Fatalf("result %+v, answer %v", res, answer)
		}
		if strings.Contains(string(res.Output), "planted-secret-token") {
			t.Fatal("the secret reached the answer")
		}
		outbox, _ := os.ReadFile(filepath.Join(dir, "outbox"))
		if !strings.Contains(string(outbox), `"from": "ward-3"`) || !strings.Contains(string(outbox), res.RunID) {
			t.Fatalf("outbox %q", outbox)
		}
		// The dashboard lists the task and shows this run on its page.
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if page := getPage(t, "http://"+st.Daemon.UIAddr+"/tasks"); !strings.Contains(page, "notify-sms") {
			t.Errorf("the dashboard's tasks page does not list notify-sms:\n%.2000s", page)
		}
		if page := getPage(t, "http://"+st.Daemon.UIAddr+"/tasks/notify-sms/default"); !strings.Contains(page, res.RunID) {
			t.Errorf("the dashboard's task page does not show run %s:\n%.2000s", res.RunID, page)
		}
		// A bad request: the plugin's own error, exit 2, and its stderr.
		res, err = tc.Exec(ctx, "notify-sms", "default", []byte(`{"to": "nobody"}`), task.ExecOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Result != task.ResultFailure || res.ExitCode != 2 || !strings.Contains(res.StderrTail, "phone number") {
			t.Fatalf("bad request: %+v", res)
		}
		runs, err := tc.Runs(ctx, "notify-sms", "", 0)
		if err != nil || len(runs) != 2 || runs[0].ExitCode != 2 {
			t.Fatalf("runs: %+v %v", runs, err)
		}
		// Output cut at the caller's cap, and said so.
		res, err = tc.Exec(ctx, "notify-sms", "", []byte(`{"to": "+4912345678", "text": "x"}`), task.ExecOptions{MaxOutput: 10})
		if err != nil || !res.OutputTruncated || len(res.Text()) != 10 || res.OutputType != task.OutputText {
			t.Fatalf("capped: %+v %v", res, err)
		}
	})

	t.Run("remote API needs the token", func(t *testing.T) {
		body := `{"to": "+4912345678", "text": "from the main server"}`
		post := func(token string) (int, string) {
			req, _ := http.NewRequest("POST", "http://"+apiAddr+"/v1/tasks/notify-sms/exec", strings.NewReader(body))
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var b strings.Builder
			_, _ = fmt.Fprint(&b, readAll(resp))
			return resp.StatusCode, b.String()
		}
		if code, _ := post(""); code != http.StatusUnauthorized {
			t.Fatalf("no token: %d", code)
		}
		if code, _ := post("guess"); code != http.StatusUnauthorized {
			t.Fatalf("wrong token: %d", code)
		}
		code, out := post("main-server-token")
		if code != 200 || !strings.Contains(out, `"status": "sent"`) {
			t.Fatalf("token: %d %s", code, out)
		}
	})

	t.Run("timeout kills the group and grandchildren", func(t *testing.T) {
		res, err := tc.Exec(ctx, "hang", "", nil, task.ExecOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Result != task.ResultTimeout {
			t.Fatalf("result %+v", res)
		}
		b, err := os.ReadFile(filepath.Join(dir, "gc.pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid <= 0 || alive(pid) {
			t.Fatalf("grandchild %d alive after the timeout", pid)
		}
	})

	t.Run("200 concurrent calls against max_concurrent 4", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, busy := 0, 0
		var other []error
		for range 200 {
			wg.Go(func() {
				res, err := tc.Exec(ctx, "count", "", nil, task.ExecOptions{})
				mu.Lock()
				defer mu.Unlock()
				var ae *task.APIError
				switch {
				case err == nil && res.Result == task.ResultSuccess:
					ok++
				case errors.As(err, &ae) && ae.Kind == "busy" && ae.RetryAfter >= 1:
					busy++
				default:
					other = append(other, fmt.Errorf("%v %+v", err, res))
				}
			})
		}
		wg.Wait()
		if len(other) > 0 {
			t.Fatalf("%d calls neither ran nor were busy: %v", len(other), other[0])
		}
		if ok+busy != 200 || ok < 20 {
			t.Fatalf("%d ran, %d busy", ok, busy)
		}
		seen, _ := os.ReadFile(filepath.Join(dir, "seen"))
		peak := 0
		for _, l := range strings.Fields(string(seen)) {
			n, _ := strconv.Atoi(l)
			peak = max(peak, n)
		}
		if len(strings.Fields(string(seen))) != ok || peak > 4 || peak < 1 {
			t.Fatalf("%d runs recorded for %d answered; peak %d alive at once, want at most 4", len(strings.Fields(string(seen))), ok, peak)
		}
		runs, _ := tc.Runs(ctx, "count", "", 0)
		if len(runs) != ok {
			t.Fatalf("history holds %d runs, %d ran", len(runs), ok)
		}
		t.Logf("200 calls: %d ran, %d answered busy, at most %d alive at once", ok, busy, peak)
	})

	t.Run("schedule", func(t *testing.T) {
		for range 400 {
			runs, err := tc.Runs(ctx, "tick", "", 0)
			if err == nil && len(runs) > 0 {
				if runs[0].Trigger != task.TriggerSchedule || runs[0].Result != task.ResultSuccess {
					t.Fatalf("scheduled run %+v", runs[0])
				}
				return
			}
			sleepBriefly()
		}
		t.Fatal("no scheduled run")
	})

	// Plans leave tasks out: nothing to start, replace or stop.
	p, err := c.Plan(ctx, api.PlanRequest{})
	if err != nil || !p.Empty() {
		t.Fatalf("plan: %+v %v", p, err)
	}
}

func readAll(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func sleepBriefly() { time.Sleep(50 * time.Millisecond) }

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("PLUGS_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
