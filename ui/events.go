package ui

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// hub turns Notify calls into patches for the event streams: after a wake it
// waits the coalesce time, reads the backend once, and sends every row,
// detail panel and summary whose content changed, as one "patch" event of
// elements with ids; plugs.js replaces the elements of the page that have
// those ids (and ignores the others). A change of the instance set sends
// "refresh", on which pages reload their tables.
type hub struct {
	s      *Server
	wakeC  chan struct{}
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once

	mu   sync.Mutex
	subs map[chan []byte]*InstanceID // what each stream's page shows of one instance; nil: none

	// unseen is set by a Notify that named no instance: an exit may have
	// come without NotifyInstance, so the next diff reads every instance.
	unseen atomic.Bool

	// dmu guards what the streams were last sent. While no stream is open
	// nothing is rendered (stale); the first subscriber takes a baseline.
	dmu      sync.Mutex
	rows     map[InstanceID]string
	summary  string
	rollouts string            // the rollout list's key
	plugRo   map[string]string // each plug's rollout key
	stale    bool
}

// subBuffer is how many patches a slow browser may lag behind before its
// stream is ended (it reconnects and reloads what it shows).
const subBuffer = 16

func newHub(s *Server) *hub {
	return &hub{
		s: s, wakeC: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
		subs: map[chan []byte]*InstanceID{}, rows: map[InstanceID]string{}, plugRo: map[string]string{}, stale: true,
	}
}

func (h *hub) wake() {
	select {
	case h.wakeC <- struct{}{}:
	default:
	}
}

func (h *hub) close() {
	h.closed.Do(func() { close(h.stop) })
	<-h.done
}

// subscribe adds a stream; watch, when not nil, is the instance whose
// detail panel its page shows.
func (h *hub) subscribe(watch *InstanceID) chan []byte {
	c := make(chan []byte, subBuffer)
	h.mu.Lock()
	h.subs[c] = watch
	h.mu.Unlock()
	// Before the stream opens, so that a change after the browser sees it
	// open is a change relative to the baseline.
	h.dmu.Lock()
	if h.stale {
		h.baseline()
	}
	h.dmu.Unlock()
	return c
}

func (h *hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// baseline records what the pages show now, without sending it. Called
// with dmu held.
func (h *hub) baseline() {
	s := h.s
	h.unseen.Store(false) // every instance is read now
	st, obs := s.b.Status(), s.b.Observe()
	s.track(obs, st)
	e := s.extras(false)
	clear(h.rows)
	for _, o := range obs {
		h.rows[o.ID] = s.rowOf(o, e).key()
	}
	h.summary = summarize(st, obs).key()
	h.rolloutDiff(nil)
	h.stale = false
}

// rolloutDiff records what the rollout list and each plug's rollout panel
// show, and renders into patch (when not nil) the list and the panels and
// histories of the plugs whose rollout changed. Called with dmu held.
func (h *hub) rolloutDiff(patch *bytes.Buffer) {
	s := h.s
	rr, ok := s.rolloutReader()
	if !ok {
		return
	}
	rs := s.rollouts()
	k := rolloutsKey(rs)
	if k == h.rollouts {
		return
	}
	h.rollouts = k
	if patch != nil {
		h.render(patch, "rollouts", rs)
	}
	seen := map[string]bool{}
	for _, r := range rs {
		seen[r.Plug] = true
		pk := rolloutsKey([]rolloutView{r})
		if h.plugRo[r.Plug] == pk {
			continue
		}
		h.plugRo[r.Plug] = pk
		if patch != nil {
			h.render(patch, "rolloutpanel", r)
			h.render(patch, "rollouthistory", s.historyOf(rr, r.Plug))
		}
	}
	for plug := range h.plugRo {
		if !seen[plug] {
			delete(h.plugRo, plug)
			if patch != nil { // the panel of a plug that has no rollout any more
				fmt.Fprintf(patch, "<section id=\"%s\" hidden></section>\n", domID("ro-", InstanceID{Plug: plug}))
			}
		}
	}
}

// watched returns the instances some stream shows the detail panel of.
func (h *hub) watched() map[InstanceID]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	w := map[InstanceID]bool{}
	for _, id := range h.subs {
		if id != nil {
			w[*id] = true
		}
	}
	return w
}

func (h *hub) unsubscribe(c chan []byte) {
	h.mu.Lock()
	delete(h.subs, c)
	h.mu.Unlock()
}

func (h *hub) run() {
	defer close(h.done)
	defer func() {
		h.mu.Lock()
		for c := range h.subs {
			close(c)
			delete(h.subs, c)
		}
		h.mu.Unlock()
	}()
	t := time.NewTimer(0)
	<-t.C
	for {
		select {
		case <-h.stop:
			return
		case <-h.wakeC:
		}
		t.Reset(h.s.coalesce)
		select {
		case <-h.stop:
			t.Stop()
			return
		case <-t.C:
		}
		if msg, details := h.diff(); len(msg) > 0 || len(details) > 0 {
			h.broadcast(msg, details)
		}
	}
}

func (h *hub) broadcast(msg []byte, details map[InstanceID][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c, watch := range h.subs {
		m := msg
		if watch != nil && details[*watch] != nil {
			m = append(slices.Clip(details[*watch]), msg...)
		}
		if len(m) == 0 {
			continue
		}
		select {
		case c <- m:
		default:
			// Too far behind: end its stream; the browser reconnects and
			// reloads its tables.
			close(c)
			delete(h.subs, c)
		}
	}
}

// diff reads the backend and renders what changed since the last call, as
// the bytes of one or two SSE events for every stream, and a "patch" event
// of the detail panel of each changed instance that a stream watches.
func (h *hub) diff() ([]byte, map[InstanceID][]byte) {
	h.dmu.Lock()
	defer h.dmu.Unlock()
	s := h.s
	if h.subscribers() == 0 {
		// Nobody watches: remember exits and reconciles, render nothing.
		// The exits of instances came with NotifyInstance; only a plain
		// Notify may hide one.
		st := s.b.Status()
		var obs []InstanceStatus
		if h.unseen.Swap(false) {
			obs = s.b.Observe()
		}
		s.track(obs, st)
		h.stale = true
		return nil, nil
	}
	if h.stale {
		h.baseline()
		return nil, nil
	}
	h.unseen.Store(false) // every instance is read now
	st, obs := s.b.Status(), s.b.Observe()
	s.track(obs, st)
	e := s.extras(false)
	watched := h.watched()
	details := map[InstanceID][]byte{}
	var patch bytes.Buffer
	seen := make(map[InstanceID]bool, len(obs))
	setChanged := false
	for _, o := range obs {
		seen[o.ID] = true
		r := s.rowOf(o, e)
		k := r.key()
		old, had := h.rows[o.ID]
		if !had {
			setChanged = true
		}
		if k == old {
			continue
		}
		h.rows[o.ID] = k
		if had {
			h.render(&patch, "row", r)
			if watched[o.ID] {
				var d, ev bytes.Buffer
				h.render(&d, "detail", s.detailOf(r))
				writeEvent(&ev, "patch", d.String())
				details[o.ID] = ev.Bytes()
			}
		}
	}
	for id := range h.rows {
		if !seen[id] {
			delete(h.rows, id)
			setChanged = true
			s.mu.Lock()
			delete(s.exits, id)
			s.mu.Unlock()
		}
	}
	sum := summarize(st, obs)
	if k := sum.key(); k != h.summary {
		h.summary = k
		h.render(&patch, "summary", sum)
	}
	// An event of its own: a page parses each patch as one HTML fragment,
	// and one that begins with a table row drops the tables of a section
	// that follows (and one that begins with a section drops the rows).
	var ro bytes.Buffer
	h.rolloutDiff(&ro)
	var out bytes.Buffer
	if patch.Len() > 0 {
		writeEvent(&out, "patch", patch.String())
	}
	if ro.Len() > 0 {
		writeEvent(&out, "patch", ro.String())
	}
	if setChanged {
		writeEvent(&out, "refresh", "instances changed")
	}
	return out.Bytes(), details
}

func (h *hub) render(w *bytes.Buffer, name string, data any) {
	if err := h.s.tmpl.ExecuteTemplate(w, name, data); err != nil {
		h.s.log.Error("render event", "template", name, "err", err)
	}
}

// writeEvent writes one server-sent event; each line of data gets its own
// data field, as the format requires.
func writeEvent(w *bytes.Buffer, event, data string) {
	w.WriteString("event: ")
	w.WriteString(event)
	w.WriteByte('\n')
	for line := range strings.SplitSeq(data, "\n") {
		w.WriteString("data: ")
		w.WriteString(strings.TrimSuffix(line, "\r"))
		w.WriteByte('\n')
	}
	w.WriteByte('\n')
}

// keepAlive is how often an idle event stream sends a comment, so that
// proxies and the browser keep it open.
const keepAlive = 25 * time.Second

func startStream(w http.ResponseWriter) *http.ResponseController {
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	return rc
}

// events is GET /events: the patches of every page; ?instance=PLUG/INSTANCE
// adds those of that instance's detail panel.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	var watch *InstanceID
	if p, i, ok := strings.Cut(r.URL.Query().Get("instance"), "/"); ok {
		watch = &InstanceID{Plug: p, Instance: i}
	}
	c := s.hub.subscribe(watch)
	defer s.hub.unsubscribe(c)
	rc := startStream(w)
	if r.Header.Get("Last-Event-ID") != "" || r.URL.Query().Get("reconnect") != "" {
		var b bytes.Buffer
		writeEvent(&b, "refresh", "reconnected")
		_, _ = w.Write(b.Bytes())
	}
	// An id lets a reconnecting browser say so (Last-Event-ID): what it
	// shows may be stale then, and it gets a refresh.
	_, _ = io.WriteString(w, "id: 1\nretry: 2000\n\n")
	_ = rc.Flush()
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case msg, ok := <-c:
			if !ok {
				return
			}
			if _, err := w.Write(msg); err != nil {
				return
			}
		case <-tick.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// logEvents is GET /instances/{plug}/{instance}/log: what the instance
// writes from now on, as "log" events of escaped text.
func (s *Server) logEvents(w http.ResponseWriter, r *http.Request) {
	o, ok := s.find(r)
	if !ok {
		http.NotFound(w, r)
		return
	}
	rc := startStream(w)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() {
		err := s.b.Logs(ctx, pw, o.ID, 0, true)
		pw.CloseWithError(cmpErr(err, io.EOF))
	})
	defer func() {
		cancel()
		pr.Close()
		wg.Wait()
	}()
	lines := make(chan string, 256)
	wg.Go(func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	})
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	var batch []string
	for {
		select {
		case <-ctx.Done():
			return
		case l, ok := <-lines:
			if !ok {
				return
			}
			batch = append(batch[:0], l)
			// Take what else is already there, so a flood is one event.
		more:
			for len(batch) < 500 {
				select {
				case l, ok := <-lines:
					if !ok {
						break more
					}
					batch = append(batch, l)
				default:
					break more
				}
			}
			var b bytes.Buffer
			var text strings.Builder
			for _, l := range batch {
				text.WriteString(template.HTMLEscapeString(strings.ToValidUTF8(l, "\uFFFD")))
				text.WriteByte('\n')
			}
			writeEvent(&b, "log", "<span>"+text.String()+"</span>")
			if _, err := w.Write(b.Bytes()); err != nil {
				return
			}
		case <-tick.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func cmpErr(err, def error) error {
	if err == nil {
		return def
	}
	return err
}
