package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/plugs-dev/plugs/internal/layout"
)

// SocketPath is where the daemon of stateDir listens (mode 0600).
func SocketPath(stateDir string) string { return layout.Socket(stateDir) }

// ErrNotRunning is wrapped by Dial's error when no daemon answers;
// ErrPermission when the socket, or the daemon, refuses this user.
var (
	ErrNotRunning = errors.New("daemon not running")
	ErrPermission = errors.New("permission denied")
)

// Client talks to a running daemon over its unix socket. Every call is
// bounded by its context: give it a deadline, since a daemon that is
// stopped (SIGSTOP) or wedged accepts connections and never answers.
type Client struct {
	socket string
	hc     *http.Client
}

// dialTimeout bounds the connect of Dial (a unix socket connects at once
// or not at all, unless the daemon's accept backlog is full).
const dialTimeout = 2 * time.Second

// Dial connects to the daemon of stateDir. Its error is an *Error of kind
// env that wraps ErrNotRunning when nothing listens there, or
// ErrPermission when this user may not use the socket; both name it.
func Dial(stateDir string) (*Client, error) {
	path := SocketPath(stateDir)
	conn, err := net.DialTimeout("unix", path, dialTimeout)
	if err != nil {
		return nil, dialError(path, err)
	}
	conn.Close()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableCompression: true,
	}
	return &Client{socket: path, hc: &http.Client{Transport: tr}}, nil
}

// dialError says why the socket at path did not connect.
func dialError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		owner := ""
		if fi, serr := os.Stat(path); serr == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				owner = fmt.Sprintf(" (mode %v, owner uid %d)", fi.Mode().Perm(), st.Uid)
			}
		} else if errors.Is(serr, fs.ErrPermission) {
			owner = " (its folder is not readable by this user)"
		}
		return &Error{Kind: KindEnv, cause: ErrPermission,
			Message: fmt.Sprintf("permission denied on %s%s: run as the daemon's user or root", path, owner)}
	}
	return &Error{Kind: KindEnv, cause: ErrNotRunning, Message: fmt.Sprintf("%v: no answer on %s", ErrNotRunning, path)}
}

// Socket is the path the client talks to.
func (c *Client) Socket() string { return c.socket }

// Close releases the client's idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Status returns the daemon's status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	return &s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Plan computes what an apply would do, without doing it.
func (c *Client) Plan(ctx context.Context, req PlanRequest) (*PlanReport, error) {
	var p PlanReport
	return &p, c.do(ctx, http.MethodPost, "/v1/plan", req, &p)
}

// Apply makes the daemon reconcile now (in GitOps mode: poll first).
func (c *Client) Apply(ctx context.Context) (*ApplyReport, error) {
	var r ApplyReport
	return &r, c.do(ctx, http.MethodPost, "/v1/apply", nil, &r)
}

// Restart restarts one instance, or every instance of a plug.
func (c *Client) Restart(ctx context.Context, req RestartRequest) (*RestartReport, error) {
	var r RestartReport
	return &r, c.do(ctx, http.MethodPost, "/v1/restart", req, &r)
}

// History lists a plug's revisions with their health verdicts.
func (c *Client) History(ctx context.Context, plug string) (*History, error) {
	var h History
	return &h, c.do(ctx, http.MethodGet, "/v1/history?"+url.Values{"plug": {plug}}.Encode(), nil, &h)
}

// Rollback pins a plug's last healthy (or named) revision until plugs.hcl
// changes the plug.
func (c *Client) Rollback(ctx context.Context, req RollbackRequest) (*RollbackReport, error) {
	var r RollbackReport
	return &r, c.do(ctx, http.MethodPost, "/v1/rollback", req, &r)
}

// Logs copies an instance's log to w: the last n lines (all when n < 0),
// then, with follow, what is appended until ctx ends.
func (c *Client) Logs(ctx context.Context, w io.Writer, plug, instance string, n int, follow bool) error {
	q := url.Values{"plug": {plug}, "instance": {instance}, "n": {strconv.Itoa(n)}, "follow": {strconv.FormatBool(follow)}}
	resp, err := c.request(ctx, http.MethodGet, "/v1/logs?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read logs: %w", err)
	}
	return nil
}

// Setup runs a plug's setup program in the daemon, confined as the plug's
// runs are: stdin (nil: none) is its input, its output is copied to out as
// it comes; the error is the setup's when it failed.
func (c *Client) Setup(ctx context.Context, req SetupRequest, stdin io.Reader, out io.Writer) error {
	q := url.Values{"plug": {req.Plug}, "instance": {req.Instance}}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://plugs/v1/setup?"+q.Encode(), stdin)
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.send(ctx, hreq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(out, resp.Body); err != nil {
		return &Error{Kind: KindEnv, Message: fmt.Sprintf("setup of %s: the daemon's answer broke off: %v", req.Plug, err), cause: err}
	}
	t := resp.Trailer.Get(SetupTrailer)
	if t == "" {
		return nil
	}
	e := &Error{Kind: KindEnv}
	if err := json.Unmarshal([]byte(t), e); err != nil || e.Message == "" {
		e.Message = fmt.Sprintf("setup of %s failed", req.Plug)
	}
	return e
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode %s answer: %w", path, err)
	}
	return nil
}

// request sends a request; a non-2xx answer becomes an *Error.
func (c *Client) request(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://plugs"+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(ctx, req)
}

// send sends req; a non-2xx answer becomes an *Error.
func (c *Client) send(ctx context.Context, req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer within the timeout (is the daemon stopped or busy? plugs status shows a reconcile in progress): %w", ctx.Err())
		}
		return nil, &Error{Kind: KindEnv, Message: fmt.Sprintf("daemon at %s: %v", c.socket, err), cause: err}
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		e := &Error{Kind: KindEnv}
		if err := json.NewDecoder(resp.Body).Decode(e); err != nil || e.Message == "" {
			e.Message = fmt.Sprintf("daemon answered %s", resp.Status)
		}
		if resp.StatusCode == http.StatusForbidden {
			e.cause = ErrPermission
		}
		return nil, e
	}
	return resp, nil
}
