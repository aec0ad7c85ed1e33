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
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/runner"
)

// backend is what the API serves; the daemon implements it, tests fake it.
type backend interface {
	status() api.Status
	plan(ctx context.Context, req api.PlanRequest) (*api.PlanReport, error)
	apply(ctx context.Context) (*api.ApplyReport, error)
	restart(ctx context.Context, req api.RestartRequest) (*api.RestartReport, error)
	logPath(plug, instance string) (string, error)
}

// apiServer serves the local API on a unix socket.
type apiServer struct {
	path string
	srv  *http.Server
	done chan struct{}
	// end cancels every request's context: a stream (logs -f) ends, and
	// Shutdown, which waits for requests to finish, can return.
	end context.CancelFunc
}

// apiShutdownGrace bounds how long shutdown waits for the requests it
// ended to return before it closes their connections.
const apiShutdownGrace = 5 * time.Second

// serveAPI listens on the socket at path (mode 0600), removing a stale
// socket a killed daemon left, and serves b until shutdown to root and the
// daemon's own user only.
func serveAPI(path string, b backend, logger *slog.Logger) (*apiServer, error) {
	if _, err := os.Lstat(path); err == nil {
		// The state-dir lock is held, so no live daemon owns it.
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	ln, err := listenPrivate(path)
	if err != nil {
		return nil, err
	}
	base, end := context.WithCancel(context.Background())
	s := &apiServer{
		path: path,
		srv: &http.Server{
			Handler:           peerCheck(os.Getuid(), apiHandler(b, logger), logger),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			BaseContext:       func(net.Listener) context.Context { return base },
			ConnContext:       withPeer,
		},
		done: make(chan struct{}),
		end:  end,
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("api server", "err", err)
		}
	}()
	return s, nil
}

// listenPrivate listens on a unix socket at path that nobody but its owner
// can connect to at any moment: it is bound inside a fresh 0700 folder
// beside path, made 0600 there, and only then renamed to path. (Binding at
// path and chmod-ing afterwards leaves a gap in which, under a lax umask,
// another user connects; a process-wide umask would race other goroutines'
// files.)
func listenPrivate(path string) (net.Listener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".sock-") // MkdirTemp makes 0700 folders
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, filepath.Base(path))
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // shutdown removes path itself
	if err := os.Chmod(tmp, 0o600); err == nil {
		err = os.Rename(tmp, path) // a bound socket, not a file write: no internal/atomicfile
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	return ln, nil
}

// peerKey is the context key of a request's peer credentials.
type peerKey struct{}

// peer is who is at the other end of an API connection (SO_PEERCRED).
type peer struct {
	uid int // -1 when it cannot be read
	// plugin: the peer is a process this daemon started or adopted (an
	// instance, a task's run, a check, a hook, or an orphan of one of them).
	plugin bool
	pid    int
}

// withPeer records a connection's peer credentials.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	p := peer{uid: -1}
	if uc, ok := c.(*net.UnixConn); ok {
		if raw, err := uc.SyscallConn(); err == nil {
			_ = raw.Control(func(fd uintptr) {
				if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
					p.uid, p.pid = int(cred.Uid), int(cred.Pid)
				}
			})
		}
	}
	// The daemon forks every instance, run, check and hook, and as a child
	// subreaper adopts what they orphan. A plugin that is root, or the
	// daemon's own user, passes the socket's mode and the uid check, and
	// Landlock does not restrict connect(2) to a socket file: without this a
	// sandboxed plugin could stop other plugs or run their tasks with their
	// secrets. An in-process client (the daemon's own pid) is no plugin.
	p.plugin = p.pid > 0 && runner.IsDescendant(p.pid, os.Getpid())
	return context.WithValue(ctx, peerKey{}, p)
}

// peerCheck serves only peers that are root or the daemon's own uid (the
// socket's mode is the first fence, this is the second: a socket made
// world-writable, an ACL), and that are not one of the daemon's plugins.
func peerCheck(own int, next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(peerKey{}).(peer)
		if p.uid != 0 && p.uid != own {
			logger.Warn("api request refused", "peer_uid", p.uid, "path", r.URL.Path)
			writeJSON(w, http.StatusForbidden, &api.Error{Kind: api.KindEnv,
				Message: fmt.Sprintf("permission denied: uid %d may not use this daemon (only root and uid %d)", p.uid, own)})
			return
		}
		if p.plugin {
			logger.Warn("api request of a plugin's process refused", "peer_pid", p.pid, "path", r.URL.Path)
			writeJSON(w, http.StatusForbidden, &api.Error{Kind: api.KindEnv,
				Message: fmt.Sprintf("permission denied: pid %d is a process this daemon started (a plugin, task, check or hook); plugins may not drive the daemon", p.pid)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// shutdown stops serving, ends streaming requests and removes the socket.
//
// The requests in flight are ended (their context is canceled: a log
// follower's stream ends, a plan or apply is canceled, as the daemon's
// stop cancels a reconcile anyway) and given apiShutdownGrace, or ctx's
// end if sooner, to return.
func (s *apiServer) shutdown(ctx context.Context) {
	s.end()
	ctx, cancel := context.WithTimeout(ctx, apiShutdownGrace)
	defer cancel()
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
		var req api.PlanRequest
		if r.ContentLength != 0 {
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				writeError(w, &api.Error{Kind: api.KindInput, Message: "decode plan request: " + err.Error()})
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
		var req api.RestartRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Plug == "" {
			writeError(w, &api.Error{Kind: api.KindInput, Message: "restart request needs a plug"})
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
	registerSetup(mux, b)    // daemon/control.go
	registerRollouts(mux, b) // daemon/rollout.go
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
				writeError(w, &api.Error{Kind: api.KindInput, Message: "invalid n: " + s})
				return
			}
		}
		follow, _ := strconv.ParseBool(q.Get("follow"))
		if _, err := os.Stat(filepath.Dir(path)); err != nil && !follow { // no such instance
			writeError(w, &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("no log for %s/%s", q.Get("plug"), q.Get("instance"))})
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if QuietLog(path, follow) {
			return
		}
		fw := flushWriter{w: w, rc: http.NewResponseController(w)}
		if err := runner.TailLog(r.Context(), fw, path, n, follow); err != nil {
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
	var e *api.Error
	if !errors.As(err, &e) {
		e = &api.Error{Kind: api.KindEnv, Message: err.Error()}
	}
	code := http.StatusInternalServerError
	if e.Kind == api.KindInput {
		code = http.StatusBadRequest
	}
	writeJSON(w, code, e)
}
