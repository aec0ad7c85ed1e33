package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Result is the outcome of one probe.
type Result struct {
	OK     bool
	Output string // why it failed, or what it said; made short by the caller
}

// Prober runs the active checks (exec, http, tcp). Probe must return by
// the time ctx ends.
type Prober interface {
	Probe(ctx context.Context, id ID, c Check, dir string, env []string) Result
}

// CommandRunner runs one short-lived command to completion: the exec check's
// effect. Run returns its exit code (-1 when killed or not started) and
// its combined output, at most a few KiB.
type CommandRunner interface {
	Run(ctx context.Context, id ID, dir string, argv, env []string) (code int, output []byte, err error)
}

// Probes is the Prober of a Manager: exec through a CommandRunner, http
// and tcp from the daemon's network namespace.
type Probes struct {
	Exec CommandRunner // nil: ExecRunner{}
	HTTP *http.Client  // nil: a client that follows no redirects off-host and keeps no connections
}

var _ Prober = (*Probes)(nil)

// Probe runs check c once.
func (p *Probes) Probe(ctx context.Context, id ID, c Check, dir string, env []string) Result {
	switch c.Type {
	case TypeExec:
		return p.exec(ctx, id, c, dir, env)
	case TypeHTTP:
		return p.http(ctx, c)
	case TypeTCP:
		return p.tcp(ctx, c)
	}
	return Result{Output: "check type " + c.Type + " is not probed"}
}

func (p *Probes) exec(ctx context.Context, id ID, c Check, dir string, env []string) Result {
	r := p.Exec
	if r == nil {
		r = ExecRunner{}
	}
	code, out, err := r.Run(ctx, id, dir, c.Command, env)
	switch {
	case ctx.Err() != nil:
		return Result{Output: fmt.Sprintf("timed out after %s: %s", c.Timeout, out)}
	case err != nil && code == -1:
		return Result{Output: err.Error()}
	case code != 0:
		return Result{Output: fmt.Sprintf("exit %d: %s", code, out)}
	}
	return Result{OK: true, Output: string(out)}
}

func (p *Probes) http(ctx context.Context, c Check) Result {
	client := p.HTTP
	if client == nil {
		client = defaultHTTPClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return Result{Output: err.Error()}
	}
	req.Header.Set("User-Agent", "plugs-health-check")
	resp, err := client.Do(req)
	if err != nil {
		var uerr interface{ Unwrap() error }
		if errors.As(err, &uerr) && uerr.Unwrap() != nil {
			err = uerr.Unwrap() // drop the method and URL prefix: the check name says which
		}
		return Result{Output: err.Error()}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Result{Output: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, body)}
	}
	if c.ExpectBody != "" {
		re, err := regexp.Compile(c.ExpectBody)
		if err != nil {
			return Result{Output: err.Error()}
		}
		if !re.Match(body) {
			return Result{Output: fmt.Sprintf("HTTP %d, body does not match %q: %s", resp.StatusCode, c.ExpectBody, body)}
		}
	}
	return Result{OK: true, Output: fmt.Sprintf("HTTP %d", resp.StatusCode)}
}

var defaultHTTPClient = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 || req.URL.Host != via[0].URL.Host {
			return http.ErrUseLastResponse
		}
		return nil
	},
}

func (p *Probes) tcp(ctx context.Context, c Check) Result {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.Address)
	if err != nil {
		var oerr *net.OpError
		if errors.As(err, &oerr) && oerr.Err != nil {
			err = oerr.Err
		}
		return Result{Output: err.Error()}
	}
	conn.Close()
	return Result{OK: true, Output: "connected"}
}

// ExecRunner runs a command with os/exec in its own process group, killed
// whole when ctx ends; it keeps the first 4 KiB of the output. The daemon
// uses the runner's RunOnce instead (the instance's user, limits and
// environment); ExecRunner serves callers without a runner, and tests.
type ExecRunner struct{}

var _ CommandRunner = ExecRunner{}

// Run runs argv in dir. A relative argv[0] with a slash is taken relative
// to dir, as instance commands are.
func (ExecRunner) Run(ctx context.Context, _ ID, dir string, argv, env []string) (int, []byte, error) {
	if len(argv) == 0 {
		return -1, nil, errors.New("empty command")
	}
	name := argv[0]
	if strings.Contains(name, "/") && !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	cmd := exec.CommandContext(ctx, name, argv[1:]...)
	cmd.Dir = dir
	cmd.Env = env
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	}
	out := &capped{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if cmd.ProcessState == nil {
		return -1, out.Bytes(), err
	}
	return cmd.ProcessState.ExitCode(), out.Bytes(), err
}

// capped keeps the first max bytes written to it.
type capped struct {
	bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
