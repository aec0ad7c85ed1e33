package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/plugs-dev/plugs/internal/layout"
)

// SocketPath is where the daemon of stateDir listens.
func SocketPath(stateDir string) string { return layout.Socket(stateDir) }

// backend is what the API serves; the daemon implements it, tests fake it.
type backend interface {
	status() Status
	plan(ctx context.Context, req PlanRequest) (*PlanReport, error)
	apply(ctx context.Context) (*ApplyReport, error)
	restart(ctx context.Context, req RestartRequest) (*RestartReport, error)
	logPath(plug, instance string) (string, error)
}

// apiServer serves the local API on a unix socket.
type apiServer struct {
	path string
	srv  *http.Server
	done chan struct{}
}

// serveAPI listens on the socket at path (mode 0600), removing a stale
// socket a killed daemon left, and serves b until shutdown.
func serveAPI(path string, b backend, logger *slog.Logger) (*apiServer, error) {
	if _, err := os.Lstat(path); err == nil {
		// The state-dir lock is held, so no live daemon owns it.
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	s := &apiServer{
		path: path,
		srv: &http.Server{
			Handler:           apiHandler(b, logger),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("api server", "err", err)
		}
	}()
	return s, nil
}

// shutdown stops serving, ends streaming requests and removes the socket.
func (s *apiServer) shutdown(ctx context.Context) {
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
	<-s.done
	os.Remove(s.path)
}

func apiHandler(b backend, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	if t, ok := b.(interface{ tasksHandler() http.Handler }); ok { // daemon/tasks.go
		mux.Handle("/v1/tasks", t.tasksHandler())
		mux.Handle("/v1/tasks/", t.tasksHandler())
	}
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.status())
	})
	mux.HandleFunc("POST /v1/plan", func(w http.ResponseWriter, r *http.Request) {
		var req PlanRequest
		if r.ContentLength != 0 {
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				writeError(w, &Error{Kind: KindInput, Message: "decode plan request: " + err.Error()})
				return
			}
		}
		p, err := b.plan(r.Context(), req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, p)
	})
	mux.HandleFunc("POST /v1/apply", func(w http.ResponseWriter, r *http.Request) {
		rep, err := b.apply(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
	mux.HandleFunc("POST /v1/restart", func(w http.ResponseWriter, r *http.Request) {
		var req RestartRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Plug == "" {
			writeError(w, &Error{Kind: KindInput, Message: "restart request needs a plug"})
			return
		}
		rep, err := b.restart(r.Context(), req)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
	registerControl(mux, b)
	mux.HandleFunc("GET /v1/logs", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		path, err := b.logPath(q.Get("plug"), q.Get("instance"))
		if err != nil {
			writeError(w, err)
			return
		}
		n := -1
		if s := q.Get("n"); s != "" {
			if n, err = strconv.Atoi(s); err != nil {
				writeError(w, &Error{Kind: KindInput, Message: "invalid n: " + s})
				return
			}
		}
		follow, _ := strconv.ParseBool(q.Get("follow"))
		if _, err := os.Stat(path); err != nil && !follow {
			writeError(w, &Error{Kind: KindInput, Message: fmt.Sprintf("no log for %s/%s", q.Get("plug"), q.Get("instance"))})
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		fw := flushWriter{w: w, rc: http.NewResponseController(w)}
		if err := TailLog(r.Context(), fw, path, n, follow); err != nil {
			logger.Debug("stream log", "err", err)
		}
	})
	return mux
}

type flushWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) { return f.w.Write(p) }
func (f flushWriter) Flush()                      { _ = f.rc.Flush() }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Kind: KindEnv, Message: err.Error()}
	}
	code := http.StatusInternalServerError
	if e.Kind == KindInput {
		code = http.StatusBadRequest
	}
	writeJSON(w, code, e)
}
