package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/plugs-dev/plugs/internal/syncbuf"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is a running Prometheus.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:41234.
	URL string

	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
}

// Sample is one element of a query result: its labels and value (NaN and
// ±Inf included; scalars have no labels).
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Result is what an instant query returned.
type Result struct {
	Type    string // vector, scalar, matrix or string
	Samples []Sample
}

// Binary returns the path of the prometheus binary, or skips the test when it
// is not installed (scripts/test-deps.sh installs it).
func Binary(t testing.TB, name string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/bin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Skipf("%s not installed (run scripts/test-deps.sh)", name)
	return ""
}

// Start runs Prometheus on a free 127.0.0.1 port, scraping targets
// (host:port, path /metrics) every second as job "plugs", with its storage
// in a temporary directory. It waits until the server is ready; the server
// stops when the test ends.
func Start(t testing.TB, targets []string) *Server {
	t.Helper()
	bin := Binary(t, "prometheus")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(Config(targets)), 0o644); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for range 3 { // the port may be taken between choosing and binding it
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s, err := start(bin, cfg, filepath.Join(dir, "data"), port)
		if err == nil {
			t.Cleanup(s.stop)
			return s
		}
		lastErr = err
	}
	t.Fatalf("start prometheus: %v", lastErr)
	return nil
}

// Config returns a prometheus.yml that scrapes targets every second.
func Config(targets []string) string {
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	return fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: plugs
    static_configs:
      - targets: [%s]
`, strings.Join(quoted, ", "))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func start(bin, cfg, data string, port int) (*Server, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &Server{URL: "http://" + addr, out: &syncbuf.Buffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+data,
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("prometheus exited: %s", s.out.String())
		case <-ctx.Done():
			s.stop()
			return nil, fmt.Errorf("prometheus not ready: %s", s.out.String())
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(s.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
	}
}

func (s *Server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Log returns what Prometheus wrote so far, for failure messages.
func (s *Server) Log() string { return s.out.String() }

// Query runs an instant query at the current time.
func (s *Server) Query(ctx context.Context, expr string) (*Result, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := s.api(ctx, "/api/v1/query?"+url.Values{"query": {expr}}.Encode(), &data); err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	r := &Result{Type: data.ResultType}
	switch data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			return nil, fmt.Errorf("query %q: decode: %w", expr, err)
		}
		for _, v := range vec {
			f, err := parseValue(v.Value[1])
			if err != nil {
				return nil, fmt.Errorf("query %q: %w", expr, err)
			}
			r.Samples = append(r.Samples, Sample{Metric: v.Metric, Value: f})
		}
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, fmt.Errorf("query %q: decode: %w", expr, err)
		}
		f, err := parseValue(v[1])
		if err != nil {
			return nil, fmt.Errorf("query %q: %w", expr, err)
		}
		r.Samples = []Sample{{Value: f}}
	default:
		return nil, fmt.Errorf("query %q: unsupported result type %q", expr, data.ResultType)
	}
	return r, nil
}

func parseValue(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("sample value %v is not a string", v)
	}
	return strconv.ParseFloat(s, 64)
}

// Target is one scrape target as /api/v1/targets reports it.
type Target struct {
	ScrapeURL  string    `json:"scrapeUrl"`
	Health     string    `json:"health"`
	LastError  string    `json:"lastError"`
	LastScrape time.Time `json:"lastScrape"`
}

// Targets returns the active scrape targets.
func (s *Server) Targets(ctx context.Context) ([]Target, error) {
	var data struct {
		ActiveTargets []Target `json:"activeTargets"`
	}
	if err := s.api(ctx, "/api/v1/targets?state=active", &data); err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	return data.ActiveTargets, nil
}

// WaitForTarget waits until the target (host:port) was scraped successfully,
// or ctx ends.
func (s *Server) WaitForTarget(ctx context.Context, target string) error {
	var last Target
	for {
		ts, err := s.Targets(ctx)
		if err == nil {
			for _, tg := range ts {
				if strings.Contains(tg.ScrapeURL, "//"+target+"/") {
					last = tg
					if tg.Health == "up" {
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("target %s not up (health %q, last error %q): %w", target, last.Health, last.LastError, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// WaitForData runs expr until it returns at least one sample, or ctx ends;
// it returns the last result. Rates need a few scrapes before they have data.
func (s *Server) WaitForData(ctx context.Context, expr string) (*Result, error) {
	for {
		r, err := s.Query(ctx, expr)
		if err == nil && len(r.Samples) > 0 {
			return r, nil
		}
		if err != nil && ctx.Err() == nil && !isTransient(err) {
			return nil, err // a bad query does not get better by waiting
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("no data")
			}
			return r, fmt.Errorf("query %q: %w (%w)", expr, err, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// apiError is an error Prometheus answered with.
type apiError struct {
	status, errorType, msg string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s: %s: %s", e.status, e.errorType, e.msg) }

func isTransient(err error) bool {
	var ae *apiError
	return !errors.As(err, &ae) || ae.errorType != "bad_data"
}

func (s *Server) api(ctx context.Context, path string, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status    string          `json:"status"`
		ErrorType string          `json:"errorType"`
		Error     string          `json:"error"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	if env.Status != "success" {
		return &apiError{status: resp.Status, errorType: env.ErrorType, msg: env.Error}
	}
	return json.Unmarshal(env.Data, data)
}
