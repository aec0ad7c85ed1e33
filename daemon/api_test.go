package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/internal/layout"
	"github.com/plugs-dev/plugs/runner"
)

type fakeBackend struct {
	dir      string
	restarts []api.RestartRequest
}

func (f *fakeBackend) status() api.Status {
	return api.Status{Daemon: api.DaemonStatus{PID: 42, ConfigRevision: "abc"}, Instances: []api.InstanceStatus{{Plug: "p", Instance: "default", State: "running", PID: 7}}}
}

func (f *fakeBackend) plan(_ context.Context, req api.PlanRequest) (*api.PlanReport, error) {
	if req.File == "bad.hcl" {
		return nil, &api.Error{Kind: api.KindInput, Message: "bad.hcl:1,1-2: Unsupported block type"}
	}
	return &api.PlanReport{Changes: []api.Change{{Plug: "p", Instance: "a", Action: api.ActionCreate, Reason: "instance added"}}, Start: 1}, nil
}

func (f *fakeBackend) apply(context.Context) (*api.ApplyReport, error) {
	return nil, errors.New("fetch failed")
}

func (f *fakeBackend) restart(_ context.Context, req api.RestartRequest) (*api.RestartReport, error) {
	f.restarts = append(f.restarts, req)
	return &api.RestartReport{Restarted: []string{req.Plug + "/" + req.Instance}}, nil
}

func (f *fakeBackend) logPath(plug, instance string) (string, error) {
	return layout.OutputLog(f.dir, plug, instance), nil
}

func TestAPIRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := api.Dial(dir); !errors.Is(err, api.ErrNotRunning) || !strings.Contains(err.Error(), api.SocketPath(dir)) {
		t.Fatalf("api.Dial without daemon: %v, want api.ErrNotRunning naming the socket", err)
	}
	// A stale socket file from a killed daemon is replaced.
	if err := os.WriteFile(api.SocketPath(dir), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fb := &fakeBackend{dir: dir}
	srv, err := serveAPI(api.SocketPath(dir), fb, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.shutdown(context.Background())
	fi, err := os.Stat(api.SocketPath(dir))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	c, err := api.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fb.status(), *st); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	p, err := c.Plan(ctx, api.PlanRequest{})
	if err != nil || p.Start != 1 || p.Changes[0].Instance != "a" {
		t.Errorf("plan = %+v, %v", p, err)
	}
	_, err = c.Plan(ctx, api.PlanRequest{File: "bad.hcl"})
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Kind != api.KindInput || !strings.Contains(apiErr.Message, "Unsupported block type") {
		t.Errorf("plan of a bad file: %v, want an input error", err)
	}
	_, err = c.Apply(ctx)
	if !errors.As(err, &apiErr) || apiErr.Kind != api.KindEnv || apiErr.Message != "fetch failed" {
		t.Errorf("apply: %v, want env error", err)
	}
	rr, err := c.Restart(ctx, api.RestartRequest{Plug: "p", Instance: "a"})
	if err != nil || len(rr.Restarted) != 1 || len(fb.restarts) != 1 {
		t.Errorf("restart = %+v, %v (calls %v)", rr, err, fb.restarts)
	}
	if _, err := c.Restart(ctx, api.RestartRequest{}); !errors.As(err, &apiErr) || apiErr.Kind != api.KindInput {
		t.Errorf("restart without plug: %v", err)
	}
}

// logServer serves the API of a fake backend whose instance p/default has
// log as its output.log, and returns the log's path, the server and a
// client (closed when the test ends).
func logServer(t *testing.T, log string) (string, *apiServer, *api.Client) {
	t.Helper()
	dir := t.TempDir()
	path := layout.OutputLog(dir, "p", "default")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := serveAPI(api.SocketPath(dir), &fakeBackend{dir: dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c, err := api.Dial(dir)
	if err != nil {
		srv.shutdown(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return path, srv, c
}

func TestAPILogsFollow(t *testing.T) {
	path, srv, c := logServer(t, "one\ntwo\nthree\n")
	defer srv.shutdown(context.Background())

	var buf bytes.Buffer
	if err := c.Logs(context.Background(), &buf, "p", "default", 2, false); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "two\nthree\n" {
		t.Errorf("logs -n 2 = %q", buf.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- c.Logs(ctx, pw, "p", "default", 1, true)
		pw.Close()
	}()
	got := make(chan string, 16)
	go func() {
		b := make([]byte, 1024)
		var acc string
		for {
			n, err := pr.Read(b)
			acc += string(b[:n])
			got <- acc
			if err != nil {
				close(got)
				return
			}
		}
	}()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case s, ok := <-got:
				if !ok {
					t.Fatalf("stream ended before %q", want)
				}
				if strings.Contains(s, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q in the followed log", want)
			}
		}
	}
	waitFor("three\n")
	appendFile(t, path, "four\n")
	waitFor("three\nfour\n")
	// Rotation: the file is renamed away and a new one takes its name.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "five\n")
	waitFor("four\nfive\n")
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("follow: %v", err)
	}
	pr.Close()
	for range got {
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTailOffset(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		n       int
		want    string
	}{
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\nc\n", 10, "a\nb\nc\n"},
		{"a\nb\nc\n", 0, ""},
		{"a\nb\nc\n", -1, "a\nb\nc\n"},
		{strings.Repeat("x", 20000) + "\nlast\n", 1, "last\n"},
		{"", 3, ""},
	} {
		path := filepath.Join(dir, "log")
		if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := runner.TailLog(context.Background(), &buf, path, tc.n, false); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tc.want {
			t.Errorf("tail -n %d of %.20q = %.20q, want %.20q", tc.n, tc.content, buf.String(), tc.want)
		}
	}
	if err := runner.TailLog(context.Background(), io.Discard, filepath.Join(dir, "missing"), 1, false); err == nil {
		t.Error("tail of a missing log: no error")
	}
}

// TestAPIShutdownEndsFollowers: a client following a log (plugs logs -f)
// does not hold up the daemon's stop: shutdown ends the stream, the
// client's call returns, and shutdown returns soon after.
func TestAPIShutdownEndsFollowers(t *testing.T) {
	_, srv, c := logServer(t, "one\n")
	pr, pw := io.Pipe()
	followed := make(chan error, 1)
	go func() {
		followed <- c.Logs(context.Background(), pw, "p", "default", 1, true)
		pw.Close()
	}()
	b := make([]byte, 64)
	if n, err := pr.Read(b); err != nil || string(b[:n]) != "one\n" {
		t.Fatalf("followed %q, %v", b[:n], err)
	}
	go io.Copy(io.Discard, pr)
	done := make(chan struct{})
	go func() {
		srv.shutdown(context.Background())
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("shutdown still waits for the follower after 15 s")
	}
	select {
	case <-followed:
	case <-time.After(15 * time.Second):
		t.Fatal("the follower's call did not return")
	}
}

// TestAPILogsOfAQuietInstance: an instance whose empty log is not made yet
// (the runner makes it once the starts pause) reads as an empty log, not
// as no log; an instance that does not exist is still an error.
func TestAPILogsOfAQuietInstance(t *testing.T) {
	dir := t.TempDir()
	instDir := filepath.Dir(layout.OutputLog(dir, "p", "default"))
	if err := os.MkdirAll(instDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(instDir, "instance.json"), []byte(`{"state":"running"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := serveAPI(api.SocketPath(dir), &fakeBackend{dir: dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.shutdown(context.Background())
	c, err := api.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var buf bytes.Buffer
	if err := c.Logs(context.Background(), &buf, "p", "default", 10, false); err != nil || buf.Len() != 0 {
		t.Errorf("logs of a quiet instance: %q, %v; want empty, no error", buf.String(), err)
	}
	if path, err := ResolveLogPath(dir, "p", ""); err != nil || path != layout.OutputLog(dir, "p", "default") {
		t.Errorf("ResolveLogPath(p) = %q, %v", path, err)
	}
	if err := c.Logs(context.Background(), &buf, "p", "nope", 10, false); err == nil {
		t.Error("logs of an instance that does not exist: no error")
	}
}
