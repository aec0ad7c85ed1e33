package task

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Client calls the task API (Handler) over hc: the daemon's local socket
// (plugs exec, plugs runs) or the remote --api-addr.
type Client struct {
	HTTP *http.Client
	// Base is the API's URL without a path, e.g. "http://plugs" for a unix
	// socket transport or "https://edge-01:9470".
	Base string
	// Token, when set, is sent as a bearer token.
	Token string
}

// ExecOptions are a call's limits; zero fields take the task's own.
type ExecOptions struct {
	Timeout   time.Duration
	MaxOutput int
}

// Exec calls plug/instance ("" instance: the only one) with input. An API
// error (busy, not found, bad input) is an *APIError.
func (c *Client) Exec(ctx context.Context, plug, instance string, input []byte, o ExecOptions) (*Result, error) {
	q := url.Values{}
	if o.Timeout > 0 {
		q.Set("timeout", o.Timeout.String())
	}
	if o.MaxOutput > 0 {
		q.Set("max_output", strconv.Itoa(o.MaxOutput))
	}
	path := "/v1/tasks/" + url.PathEscape(plug) + "/exec"
	if instance != "" {
		path = "/v1/tasks/" + url.PathEscape(plug) + "/" + url.PathEscape(instance) + "/exec"
	}
	var r Result
	return &r, c.do(ctx, http.MethodPost, path, q, input, &r)
}

// Runs returns up to n runs of plug (n <= 0: all kept), newest first.
func (c *Client) Runs(ctx context.Context, plug, instance string, n int) ([]Result, error) {
	q := url.Values{}
	if instance != "" {
		q.Set("instance", instance)
	}
	if n > 0 {
		q.Set("n", strconv.Itoa(n))
	}
	var out []Result
	return out, c.do(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(plug)+"/runs", q, nil, &out)
}

// Tasks lists every task instance with its last run.
func (c *Client) Tasks(ctx context.Context) ([]TaskInfo, error) {
	var out []TaskInfo
	return out, c.do(ctx, http.MethodGet, "/v1/tasks", nil, nil, &out)
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	u := c.Base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		e := &APIError{}
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			e = &APIError{Kind: "env", Message: fmt.Sprintf("%s %s: %s", method, path, resp.Status)}
		}
		if e.Kind == "" {
			e.Kind = "env"
		}
		if resp.StatusCode == http.StatusNotFound && e.Kind == "env" {
			e.Kind = "not_found"
		}
		if s := resp.Header.Get("Retry-After"); s != "" && e.RetryAfter == 0 {
			e.RetryAfter, _ = strconv.Atoi(s)
		}
		return e
	}
	return json.Unmarshal(b, out)
}

// UnixClient is a Client for the task API on a daemon's local socket.
func UnixClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableCompression: true,
	}
	return &Client{HTTP: &http.Client{Transport: tr}, Base: "http://plugs"}
}
