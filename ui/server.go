package ui

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/plugs-dev/plugs/internal/clock"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a Server.
type Options struct {
	Backend Backend
	Logger  *slog.Logger
	// Clock is the time source; nil: clock.New().
	Clock clock.Clock
	// ProcRoot is where /proc is mounted, for CPU, memory and process
	// trees; default "/proc". "-" disables reading it.
	ProcRoot string
	// Key signs CSRF tokens; default: random per server.
	Key []byte
	// Coalesce is how long the event stream gathers changes before it
	// sends them; default 50ms.
	Coalesce time.Duration
	// ActionTimeout bounds an action (restart, apply, setup...); default 5m.
	ActionTimeout time.Duration
	// Hostname is shown in every page's header; default os.Hostname.
	Hostname string
}

// Server serves the dashboard. Notify tells it that something changed;
// Close ends its event streams.
type Server struct {
	b     Backend
	host  string
	log   *slog.Logger
	now   func() time.Time
	key   []byte
	procs *procReader
	tmpl  *template.Template
	// assets maps a static file's name to its versioned URL path.
	assets map[string]string

	coalesce      time.Duration
	actionTimeout time.Duration

	hub *hub

	// ownUID is the daemon's uid; peerUID finds a TCP client's (peer.go).
	ownUID  uint32
	peerUID peerLookup

	// mu guards what the server remembers of what it saw.
	mu      sync.Mutex
	exits   map[InstanceID][]Exit
	history []ReconcileStatus
}

// Bounds of what a server remembers.
const (
	maxExits   = 10
	maxHistory = 100
	logLines   = 200
)

// New returns a server for opts.Backend. It starts the goroutine that
// feeds the event streams; Close stops it.
func New(opts Options) (*Server, error) {
	if opts.Backend == nil {
		return nil, errors.New("ui: no backend")
	}
	s := &Server{
		b:             opts.Backend,
		log:           opts.Logger,
		key:           opts.Key,
		coalesce:      opts.Coalesce,
		actionTimeout: opts.ActionTimeout,
		exits:         map[InstanceID][]Exit{},
		host:          opts.Hostname,
		ownUID:        uint32(os.Getuid()),
		peerUID:       procPeerLookup("/proc"),
	}
	if s.host == "" {
		s.host, _ = os.Hostname()
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.New()
	}
	s.now = opts.Clock.Now
	if len(s.key) == 0 {
		s.key = []byte(rand.Text())
	}
	if s.coalesce == 0 {
		s.coalesce = 50 * time.Millisecond
	}
	if s.actionTimeout == 0 {
		s.actionTimeout = 5 * time.Minute
	}
	root := opts.ProcRoot
	switch root {
	case "":
		root = "/proc"
	case "-":
		root = ""
	}
	s.procs = &procReader{root: root, maxAge: time.Second, now: s.now}
	if err := s.loadAssets(); err != nil {
		return nil, err
	}
	t, err := template.New("").Funcs(s.funcs()).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("ui templates: %w", err)
	}
	s.tmpl = t
	s.hub = newHub(s)
	s.track(s.b.Observe(), s.b.Status())
	go s.hub.run()
	return s, nil
}

// Close stops the event feed and ends every event stream.
func (s *Server) Close() { s.hub.close() }

// Notify says that an instance or the daemon changed; the event streams
// send what the pages show of it shortly after. It never blocks.
func (s *Server) Notify() {
	s.hub.unseen.Store(true)
	s.hub.wake()
}

// NotifyInstance is Notify for a change of one instance, whose status is o:
// its exit is remembered at once, so that while no page watches, the
// change costs no read of every instance (Backend.Observe copies them
// all: ~1 ms at 1,000, on every exit and start). It never blocks.
func (s *Server) NotifyInstance(o InstanceStatus) {
	s.mu.Lock()
	s.trackExitLocked(o)
	s.mu.Unlock()
	s.hub.wake()
}

func (s *Server) loadAssets() error {
	s.assets = map[string]string{}
	return fs.WalkDir(staticFS, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		name := strings.TrimPrefix(path, "static/")
		s.assets[name] = "/static/" + name + "?v=" + hex.EncodeToString(sum[:6])
		return nil
	})
}

// Handler serves every page, action, event stream and asset.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page(s.hostPage))
	mux.HandleFunc("GET /instances", s.page(s.instancesPage))
	mux.HandleFunc("GET /instances/{plug}/{instance}", s.page(s.instancePage))
	mux.HandleFunc("GET /instances/{plug}/{instance}/log", s.logEvents)
	mux.HandleFunc("GET /instances/{plug}/{instance}/{action}", s.page(s.confirmPage))
	mux.HandleFunc("POST /instances/{plug}/{instance}/{action}", s.action)
	mux.HandleFunc("GET /plugins", s.page(s.pluginsPage))
	mux.HandleFunc("GET /plan", s.page(s.planPage))
	mux.HandleFunc("POST /plan/apply", s.applyAction)
	mux.HandleFunc("GET /history", s.page(s.historyPage))
	mux.HandleFunc("GET /rollouts/{plug}", s.page(s.rolloutPage))
	mux.HandleFunc("GET /tasks", s.page(s.tasksPage))
	mux.HandleFunc("GET /tasks/{plug}/{instance}", s.page(s.taskPage))
	mux.HandleFunc("POST /tasks/{plug}/{instance}/run", s.runTask)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /static/{name}", s.static)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
	}))
	return securityHeaders(cop.Handler(mux))
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	switch {
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	}
	if r.URL.Query().Get("v") != "" {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	writeCompressed(w, r, http.StatusOK, b)
}

// view is what every page template gets.
type view struct {
	Title  string
	Nav    string // the nav entry of the page
	Host   string
	CSRF   string
	Notice string
	Error  string
	Path   string // the page's URL, for the event stream's refreshes
	Events string // the event stream's URL
	// Tasks says the backend runs tasks (a Tasks entry in the navigation).
	Tasks bool
	Data  any
}

// pageFunc fills a page's view; its error is shown as a page of its own.
type pageFunc func(w http.ResponseWriter, r *http.Request, v *view) (tmpl string, code int)

// page renders a page into a buffer (so a template error is a 500, not half
// a page), then writes it, compressed when the browser takes gzip.
func (s *Server) page(f pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := &view{CSRF: s.csrfToken(w, r), Path: r.URL.RequestURI(), Events: "/events"}
		v.Host = s.host
		_, v.Tasks = s.b.(TaskRunner)
		name, code := f(w, r, v)
		if name == "" {
			return // answered already
		}
		var buf bytes.Buffer
		if err := s.tmpl.ExecuteTemplate(&buf, name, v); err != nil {
			s.log.Error("render page", "page", name, "err", err)
			http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		writeCompressed(w, r, code, buf.Bytes())
	}
}

var gzipPool = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return zw
}}

func writeCompressed(w http.ResponseWriter, r *http.Request, code int, b []byte) {
	w.Header().Add("Vary", "Accept-Encoding")
	if len(b) < 1024 || !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.WriteHeader(code)
		_, _ = w.Write(b)
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	w.WriteHeader(code)
	zw := gzipPool.Get().(*gzip.Writer)
	zw.Reset(w)
	_, _ = zw.Write(b)
	_ = zw.Close()
	gzipPool.Put(zw)
}

// withTimeout bounds an action by the server's action timeout.
func (s *Server) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), s.actionTimeout)
}
