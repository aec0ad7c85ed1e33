package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/instance"
)

// The imperative actions of the dashboard (and of POST /v1/stop, /v1/start
// and /v1/kill): stop and start override the desired state until the next
// reconcile that applies, which starts every desired instance again; kill
// SIGKILLs an instance's process group at once, after which the restart
// policy applies as for a crash.

// manual is what was stopped by hand since the last apply.
type manual struct {
	mu      sync.Mutex
	stopped map[instance.ID]stoppedByHand
}

type stoppedByHand struct {
	status instance.Status // as it was when it was stopped
	at     time.Time
}

// ReasonStoppedByHand is the reason shown for an instance stopped by hand.
const ReasonStoppedByHand = "stopped by hand; the next apply starts it again"

func (d *daemon) findInstance(id instance.ID) (instance.Status, bool) {
	for _, o := range d.runner.Observe() {
		if o.ID == id {
			return o, true
		}
	}
	return instance.Status{}, false
}

func noInstance(id instance.ID) error {
	return &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("no instance %s", id)}
}

// stopByHand stops an instance until the next apply.
func (d *daemon) stopByHand(ctx context.Context, id instance.ID) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, ok := d.findInstance(id)
	if !ok {
		return noInstance(id)
	}
	if err := d.runner.Stop(ctx, id); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	st.State, st.PID, st.StartedAt, st.Reason, st.Since = instance.StateStopped, 0, time.Time{}, ReasonStoppedByHand, time.Now()
	d.manual.mu.Lock()
	if d.manual.stopped == nil {
		d.manual.stopped = map[instance.ID]stoppedByHand{}
	}
	d.manual.stopped[id] = stoppedByHand{status: st, at: st.Since}
	d.manual.mu.Unlock()
	d.log.Info("stopped by hand", "instance", id.String())
	d.observe(st)
	return nil
}

// startByHand starts again an instance stopped by hand, with the spec it had.
func (d *daemon) startByHand(ctx context.Context, id instance.ID) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.manual.mu.Lock()
	s, ok := d.manual.stopped[id]
	d.manual.mu.Unlock()
	if !ok {
		if _, runs := d.findInstance(id); runs {
			return &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("%s was not stopped by hand: it runs as the configuration says (restart it instead)", id)}
		}
		return noInstance(id)
	}
	if err := d.runner.Start(ctx, s.status.Spec); err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	d.manual.mu.Lock()
	delete(d.manual.stopped, id)
	d.manual.mu.Unlock()
	d.log.Info("started by hand", "instance", id.String())
	d.notifyUI()
	return nil
}

// kill sends SIGKILL to an instance's process group.
func (d *daemon) kill(id instance.ID) error {
	st, ok := d.findInstance(id)
	if !ok {
		return noInstance(id)
	}
	if st.PID <= 0 {
		return &api.Error{Kind: api.KindInput, Message: fmt.Sprintf("%s has no process (it is %s)", id, st.State)}
	}
	// The runner starts each instance as the leader of its own group; a pid
	// that leads no group is not (or no longer) ours to kill as a group.
	if pgid, err := syscall.Getpgid(st.PID); err != nil || pgid != st.PID {
		return &api.Error{Kind: api.KindEnv, Message: fmt.Sprintf("%s: pid %d does not lead its process group any more", id, st.PID)}
	}
	if err := syscall.Kill(-st.PID, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill %s: %w", id, err)
	}
	d.log.Info("killed by hand", "instance", id.String(), "pid", st.PID)
	return nil
}

// endOverrides forgets what was stopped by hand: the apply that just ran
// started what the configuration declares. Called with mu held.
func (d *daemon) endOverrides() {
	d.manual.mu.Lock()
	clear(d.manual.stopped)
	d.manual.mu.Unlock()
}

// overrides names the instances stopped by hand.
func (d *daemon) overrides() map[instance.ID]string {
	d.manual.mu.Lock()
	defer d.manual.mu.Unlock()
	out := make(map[instance.ID]string, len(d.manual.stopped))
	for id := range d.manual.stopped {
		out[id] = "stopped"
	}
	return out
}

// observeAll is the runner's instances and those stopped by hand, which the
// runner forgot.
func (d *daemon) observeAll() []instance.Status {
	obs := d.runner.Observe()
	d.manual.mu.Lock()
	stopped := maps.Clone(d.manual.stopped)
	d.manual.mu.Unlock()
	if len(stopped) == 0 {
		return obs
	}
	for _, o := range obs {
		delete(stopped, o.ID)
	}
	for _, s := range stopped {
		obs = append(obs, s.status)
	}
	return obs
}

// setupInstance runs a plug's setup program as plugs setup does, without a
// terminal (stdin is empty), for the config of instance id.
func (d *daemon) setupInstance(ctx context.Context, id instance.ID, out io.Writer) error {
	return d.setup(ctx, api.SetupRequest{Plug: id.Plug, Instance: id.Instance}, nil, out)
}

// setup runs a plug's setup program with the daemon's runner, so confined
// as the plug's runs are (the dashboard's "run setup", plugs setup while
// the daemon runs), marks it done and starts the plug's instances that
// waited for it. Its output goes to out, stdout and stderr alike.
func (d *daemon) setup(ctx context.Context, req api.SetupRequest, stdin io.Reader, out io.Writer) error {
	err := runSetup(ctx, d.newLoader(), d.file, d.opts.Vars, d.runner, req.Plug, req.Instance, stdin, out, out)
	d.flushSoon() // a tree its load fetched (daemon/flush.go)
	if err != nil {
		return err
	}
	// The plug's instances held in needs-setup start now.
	if _, err := d.restart(ctx, api.RestartRequest{Plug: req.Plug}); err != nil {
		return fmt.Errorf("setup of %s done; starting its instances: %w", req.Plug, err)
	}
	return nil
}

// setupBackend is what POST /v1/setup needs.
type setupBackend interface {
	setup(ctx context.Context, req api.SetupRequest, stdin io.Reader, out io.Writer) error
}

var _ setupBackend = (*daemon)(nil)

// registerSetup adds POST /v1/setup when b has it: the request's body is
// the program's input, the answer streams its output, and the trailer
// api.SetupTrailer says how it ended.
func registerSetup(mux *http.ServeMux, b backend) {
	sb, ok := b.(setupBackend)
	if !ok {
		return
	}
	mux.HandleFunc("POST /v1/setup", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		req := api.SetupRequest{Plug: q.Get("plug"), Instance: q.Get("instance")}
		if req.Plug == "" {
			writeError(w, &api.Error{Kind: api.KindInput, Message: "the setup request needs a plug"})
			return
		}
		rc := http.NewResponseController(w)
		_ = rc.EnableFullDuplex() // the input is read while the output is written
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Trailer", api.SetupTrailer)
		w.WriteHeader(http.StatusOK)
		out := &lockedFlusher{w: w, rc: rc}
		err := sb.setup(r.Context(), req, r.Body, out)
		if err != nil {
			var e *api.Error
			if !errors.As(err, &e) {
				e = &api.Error{Kind: api.KindEnv, Message: err.Error()}
			}
			b, _ := json.Marshal(e)
			out.mu.Lock()
			w.Header().Set(api.SetupTrailer, string(b))
			out.mu.Unlock()
		}
	})
}

// lockedFlusher writes and flushes each write to the client at once; the
// program's stdout and stderr copiers share it.
type lockedFlusher struct {
	mu sync.Mutex
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (f *lockedFlusher) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// controlBackend is what POST /v1/stop, /v1/start and /v1/kill need.
type controlBackend interface {
	stopByHand(ctx context.Context, id instance.ID) error
	startByHand(ctx context.Context, id instance.ID) error
	kill(id instance.ID) error
}

var _ controlBackend = (*daemon)(nil)

// registerControl adds the imperative actions to the API when b has them.
// Each takes {"plug": ..., "instance": ...} and answers {"done": "PLUG/INSTANCE"}.
func registerControl(mux *http.ServeMux, b backend) {
	cb, ok := b.(controlBackend)
	if !ok {
		return
	}
	handle := func(path string, do func(ctx context.Context, id instance.ID) error) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			var req api.RestartRequest
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Plug == "" || req.Instance == "" {
				writeError(w, &api.Error{Kind: api.KindInput, Message: "the request needs a plug and an instance"})
				return
			}
			id := instance.ID{Plug: req.Plug, Instance: req.Instance}
			if err := do(r.Context(), id); err != nil {
				writeError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]string{"done": id.String()})
		})
	}
	handle("/v1/stop", cb.stopByHand)
	handle("/v1/start", cb.startByHand)
	handle("/v1/kill", func(_ context.Context, id instance.ID) error { return cb.kill(id) })
}
