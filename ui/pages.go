package ui

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plugs-dev/plugs/internal/redact"
)

// row is one instance as the tables show it.
type row struct {
	ID       InstanceID
	DOMID    string
	Href     string
	State    string
	Reason   string
	Override string
	PID      int
	Started  time.Time
	Restarts int
	Version  string
	Revision string
	LastExit string
	Usage    usage

	ShowHealth bool
	Health     string
}

// key is what a row shows that the event stream must send when it changes
// (uptime ticks in the browser; CPU and memory are read at page loads).
func (r row) key() string {
	return fmt.Sprint(r.State, "|", r.Reason, "|", r.Override, "|", r.PID, "|", r.Started.UnixNano(), "|",
		r.Restarts, "|", r.Version, "|", r.Revision, "|", r.LastExit, "|", r.Health)
}

func domID(prefix string, id InstanceID) string {
	return prefix + hex.EncodeToString([]byte(id.Plug+"/"+id.Instance))
}

func instanceHref(id InstanceID) string {
	return "/instances/" + url.PathEscape(id.Plug) + "/" + url.PathEscape(id.Instance)
}

func (s *Server) overrides() map[InstanceID]string {
	if c, ok := s.b.(Controller); ok {
		return c.Overrides()
	}
	return nil
}

// extras is what a row shows beyond the instance's status, read once per
// page or event.
type extras struct {
	procs     *procTable
	overrides map[InstanceID]string
	health    map[InstanceID]Health
	hasHealth bool
}

func (s *Server) extras(withProcs bool) extras {
	e := extras{overrides: s.overrides()}
	if hr, ok := s.b.(HealthReader); ok {
		e.health, e.hasHealth = hr.Health(), true
	}
	if withProcs {
		e.procs = s.procs.table()
	}
	return e
}

func (s *Server) rowOf(o InstanceStatus, e extras) row {
	t := e.procs
	r := row{
		ID: o.ID, DOMID: domID("i-", o.ID), Href: instanceHref(o.ID),
		State: string(o.State), Reason: o.Reason, Override: e.overrides[o.ID],
		ShowHealth: e.hasHealth, Health: e.health[o.ID].State,
		PID: o.PID, Started: o.StartedAt, Restarts: o.Restarts,
		Version: o.Spec.Version, Revision: o.Spec.Revision,
	}
	if o.LastExit != nil {
		r.LastExit = exitText(*o.LastExit)
	}
	if o.PID > 0 {
		r.Usage = t.usage(o.PID)
	}
	return r
}

func exitText(e Exit) string {
	if e.Signal != "" {
		return "killed by " + e.Signal
	}
	return "exit " + strconv.Itoa(e.Code)
}

// hostData is the host page's.
type hostData struct {
	Daemon   DaemonStatus
	Summary  summary
	Plugs    []plugRow
	Rollouts []rolloutView
}

// summary is the live part of the host and instances pages.
type summary struct {
	Total     int
	States    []stateCount
	Last      *ReconcileStatus
	Broker    bool
	BrokerURL string
}

type stateCount struct {
	State string
	N     int
}

func (s summary) key() string {
	k := fmt.Sprint(s.Total, s.States, s.Broker)
	if s.Last != nil {
		k += fmt.Sprint(s.Last.At.UnixNano(), s.Last.Error)
	}
	return k
}

type plugRow struct {
	Plug      string
	Version   string
	Revision  string
	Instances int
	Running   int
}

var stateOrder = []string{"starting", "running", "backoff", "stopping", "stopped", "failed"}

func summarize(st Status, obs []InstanceStatus) summary {
	sum := summary{Total: len(obs), Last: st.Daemon.LastReconcile, Broker: st.Daemon.BrokerConnected, BrokerURL: st.Daemon.BrokerURL}
	n := map[string]int{}
	for _, o := range obs {
		n[string(o.State)]++
	}
	for _, state := range stateOrder {
		if n[state] > 0 {
			sum.States = append(sum.States, stateCount{state, n[state]})
		}
		delete(n, state)
	}
	for _, state := range slices.Sorted(mapsKeys(n)) {
		sum.States = append(sum.States, stateCount{state, n[state]})
	}
	return sum
}

func mapsKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (s *Server) hostPage(w http.ResponseWriter, r *http.Request, v *view) (string, int) {
	st, obs := s.b.Status(), s.b.Observe()
	s.track(obs, st)
	v.Title, v.Nav = "Host", "host"
	d := hostData{Daemon: st.Daemon, Summary: summarize(st, obs), Rollouts: s.rollouts()}
	plugs := map[string]*plugRow{}
	for _, o := range obs {
		p := plugs[o.ID.Plug]
		if p == nil {
			p = &plugRow{Plug: o.ID.Plug, Version: o.Spec.Version, Revision: o.Spec.Revision}
			plugs[o.ID.Plug] = p
		}
		p.Instances++
		if o.State == "running" {
			p.Running++
		}
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range plugs {
			if !yield(k) {
				return
			}
		}
	}) {
		d.Plugs = append(d.Plugs, *plugs[name])
	}
	v.Data = d
	return "host", http.StatusOK
}

// listData is the instances page's.
type listData struct {
	Summary  summary
	Rollouts []rolloutView
	Rows     []row
	Shown    int
	Query    string
	State    string
	Sort     string
	Desc     bool
	States   []string
	Columns  []column
	// HasHealth says the backend checks health (a column more).
	HasHealth bool
	Self      string // this view's URL, reloaded on a refresh event
}

type column struct {
	Key, Label string
	Href       string
	Sorted     string // "ascending", "descending" or ""
	Numeric    bool
}

var sortKeys = []struct {
	key, label string
	numeric    bool
}{
	{"plug", "Instance", false}, {"state", "State", false}, {"health", "Health", false}, {"pid", "PID", true},
	{"uptime", "Uptime", true}, {"restarts", "Restarts", true}, {"cpu", "CPU", true},
	{"memory", "Memory", true}, {"version", "Version", false}, {"revision", "Revision", false},
}

func (s *Server) instancesPage(w http.ResponseWriter, r *http.Request, v *view) (string, int) {
	st, obs := s.b.Status(), s.b.Observe()
	s.track(obs, st)
	v.Title, v.Nav = "Instances", "instances"
	q := r.URL.Query()
	d := listData{
		Summary:  summarize(st, obs),
		Rollouts: s.rollouts(),
		Query:    strings.TrimSpace(q.Get("q")),
		State:    q.Get("state"),
		Sort:     q.Get("sort"),
		Desc:     q.Get("desc") == "1",
		States:   stateOrder,
	}
	if !slices.ContainsFunc(sortKeys, func(k struct {
		key, label string
		numeric    bool
	}) bool {
		return k.key == d.Sort
	}) {
		d.Sort = "plug"
	}
	e := s.extras(true)
	needle := strings.ToLower(d.Query)
	for _, o := range obs {
		if d.State != "" && string(o.State) != d.State {
			continue
		}
		if needle != "" && !strings.Contains(strings.ToLower(o.ID.Plug+"/"+o.ID.Instance+" "+string(o.State)+" "+o.Spec.Version), needle) {
			continue
		}
		d.Rows = append(d.Rows, s.rowOf(o, e))
	}
	d.Shown = len(d.Rows)
	d.Self = listURL(d.Query, d.State, d.Sort, d.Desc)
	sortRows(d.Rows, d.Sort, d.Desc)
	d.HasHealth = e.hasHealth
	for _, k := range sortKeys {
		if k.key == "health" && !e.hasHealth {
			continue
		}
		c := column{Key: k.key, Label: k.label, Numeric: k.numeric}
		desc := false
		if k.key == d.Sort {
			c.Sorted = "ascending"
			if d.Desc {
				c.Sorted = "descending"
			} else {
				desc = true
			}
		}
		c.Href = listURL(d.Query, d.State, k.key, desc)
		d.Columns = append(d.Columns, c)
	}
	v.Data = d
	return "instances", http.StatusOK
}

func listURL(query, state, sort string, desc bool) string {
	q := url.Values{}
	if query != "" {
		q.Set("q", query)
	}
	if state != "" {
		q.Set("state", state)
	}
	if sort != "plug" {
		q.Set("sort", sort)
	}
	if desc {
		q.Set("desc", "1")
	}
	if len(q) == 0 {
		return "/instances"
	}
	return "/instances?" + q.Encode()
}

func sortRows(rows []row, key string, desc bool) {
	byName := func(a, b row) int {
		return cmp.Or(strings.Compare(a.ID.Plug, b.ID.Plug), strings.Compare(a.ID.Instance, b.ID.Instance))
	}
	var f func(a, b row) int
	switch key {
	case "state":
		f = func(a, b row) int { return strings.Compare(a.State, b.State) }
	case "health":
		f = func(a, b row) int { return strings.Compare(a.Health, b.Health) }
	case "pid":
		f = func(a, b row) int { return cmp.Compare(a.PID, b.PID) }
	case "uptime":
		// Longest running first when ascending by uptime: the oldest start.
		f = func(a, b row) int { return cmp.Compare(startKey(b), startKey(a)) }
	case "restarts":
		f = func(a, b row) int { return cmp.Compare(a.Restarts, b.Restarts) }
	case "cpu":
		f = func(a, b row) int { return cmp.Compare(a.Usage.CPUSeconds, b.Usage.CPUSeconds) }
	case "memory":
		f = func(a, b row) int { return cmp.Compare(a.Usage.RSSBytes, b.Usage.RSSBytes) }
	case "version":
		f = func(a, b row) int { return strings.Compare(a.Version, b.Version) }
	case "revision":
		f = func(a, b row) int { return strings.Compare(a.Revision, b.Revision) }
	default:
		f = func(a, b row) int { return 0 }
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		c := f(a, b)
		if desc {
			c = -c
		}
		return cmp.Or(c, byName(a, b))
	})
}

// startKey orders by uptime: no process counts as just started.
func startKey(r row) int64 {
	if r.Started.IsZero() {
		return 1<<63 - 1
	}
	return r.Started.UnixNano()
}

// instanceData is the instance page's.
type instanceData struct {
	Row     row
	Detail  detail
	Config  string
	Command []string
	EnvKeys []string
	Tree    []treeNode
	Log     string
	LogURL  string
	Actions []actionLink

	HasHealth bool
	Health    Health
	// Rollout is the plug's, when it has an update {} block; RolloutID
	// its panel's id, for a rollout that begins while the page is open.
	Rollout   *rolloutView
	RolloutID string
}

// detail is the live part of the instance page.
type detail struct {
	DOMID string
	Row   row
	Exits []Exit
}

func (d detail) key() string { return d.Row.key() + fmt.Sprint(len(d.Exits)) }

type actionLink struct {
	Name, Label, Href string
	Danger            bool
}

func (s *Server) find(r *http.Request) (InstanceStatus, bool) {
	id := InstanceID{Plug: r.PathValue("plug"), Instance: r.PathValue("instance")}
	for _, o := range s.b.Observe() {
		if o.ID == id {
			return o, true
		}
	}
	return InstanceStatus{ID: id}, false
}

func (s *Server) notFound(v *view, what string) (string, int) {
	v.Title = "Not found"
	v.Error = what + " does not exist (any more)."
	return "error", http.StatusNotFound
}

func (s *Server) instancePage(w http.ResponseWriter, r *http.Request, v *view) (string, int) {
	o, ok := s.find(r)
	if !ok {
		return s.notFound(v, "Instance "+o.ID.String())
	}
	s.track([]InstanceStatus{o}, s.b.Status())
	v.Title, v.Nav = o.ID.String(), "instances"
	v.Events = "/events?" + url.Values{"instance": {o.ID.String()}}.Encode()
	v.Notice = doneNotice(r.URL.Query().Get("done"), o.ID)
	e := s.extras(true)
	rw := s.rowOf(o, e)
	d := instanceData{
		Row:       rw,
		Detail:    s.detailOf(rw),
		Config:    prettyJSON(o.Spec.Redacted),
		Command:   o.Spec.Command,
		Tree:      e.procs.tree(o.PID),
		LogURL:    instanceHref(o.ID) + "/log",
		Actions:   s.actionsFor(o.ID, rw.Override),
		Health:    e.health[o.ID],
		HasHealth: e.hasHealth,
		Rollout:   rolloutOf(s.rollouts(), o.ID.Plug),
	}
	if _, ok := s.rolloutReader(); ok {
		d.RolloutID = domID("ro-", InstanceID{Plug: o.ID.Plug})
	}
	for k := range o.Spec.Env {
		d.EnvKeys = append(d.EnvKeys, k)
	}
	slices.Sort(d.EnvKeys)
	var lb bytes.Buffer
	if err := s.b.Logs(r.Context(), &lb, o.ID, logLines, false); err == nil {
		d.Log = strings.ToValidUTF8(lb.String(), "\uFFFD")
	}
	v.Data = d
	return "instance", http.StatusOK
}

func (s *Server) detailOf(r row) detail {
	s.mu.Lock()
	exits := slices.Clone(s.exits[r.ID])
	s.mu.Unlock()
	slices.Reverse(exits)
	return detail{DOMID: domID("d-", r.ID), Row: r, Exits: exits}
}

// prettyJSON indents a redacted config for reading; what is not JSON is
// shown as it is.
func prettyJSON(b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return string(b)
	}
	return out.String()
}

// actions are the instance actions a backend supports.
var actions = map[string]struct {
	label, verb, explain string
	danger               bool
}{
	"restart": {"Restart", "restarted", "Its process gets its stop signal, then starts again with the same config. The desired state does not change.", false},
	"stop":    {"Stop", "stopped", "Its process is stopped and stays stopped until you start it or the next apply (plugs apply, a changed plugs.hcl, SIGHUP) starts it again.", true},
	"start":   {"Start", "started", "It starts again with its current config; the override ends at the next apply.", false},
	"kill":    {"Kill", "killed", "SIGKILL is sent to its whole process group at once, without the stop signal or stop timeout; the restart policy then applies as for a crash.", true},
	"setup":   {"Run setup", "set up", "The plugin's configuration program runs with this instance's config, without a terminal; its output is shown.", false},
}

// actionsFor lists what can be done to an instance now: start for one
// stopped by hand; otherwise restart, stop and kill, and run setup when
// its plugin has a setup program.
func (s *Server) actionsFor(id InstanceID, override string) []actionLink {
	var names []string
	_, control := s.b.(Controller)
	switch {
	case override == "stopped" && control:
		names = []string{"start"}
	case control:
		names = []string{"restart", "stop", "kill"}
	default:
		names = []string{"restart"}
	}
	if _, ok := s.b.(SetupRunner); ok && override != "stopped" {
		for _, p := range s.b.Plugins() {
			if p.Plug == id.Plug && p.HasSetup {
				names = append(names, "setup")
			}
		}
	}
	var out []actionLink
	for _, n := range names {
		a := actions[n]
		out = append(out, actionLink{Name: n, Label: a.label, Href: instanceHref(id) + "/" + n, Danger: a.danger})
	}
	return out
}

func (s *Server) supports(name string) bool {
	switch name {
	case "restart":
		return true
	case "stop", "start", "kill":
		_, ok := s.b.(Controller)
		return ok
	case "setup":
		_, ok := s.b.(SetupRunner)
		return ok
	}
	return false
}

func doneNotice(done string, id InstanceID) string {
	if a, ok := actions[done]; ok {
		return id.String() + " " + a.verb + "."
	}
	return ""
}

// confirmData is a confirmation page's.
type confirmData struct {
	Row     row
	Action  string
	Label   string
	Explain string
	Post    string
	Back    string
	Danger  bool
}

func (s *Server) confirmPage(w http.ResponseWriter, r *http.Request, v *view) (string, int) {
	name := r.PathValue("action")
	if !s.supports(name) {
		return s.notFound(v, "Action "+name)
	}
	o, ok := s.find(r)
	if !ok {
		return s.notFound(v, "Instance "+o.ID.String())
	}
	a := actions[name]
	v.Title, v.Nav = a.label+" "+o.ID.String(), "instances"
	v.Data = confirmData{
		Row: s.rowOf(o, s.extras(false)), Action: name, Label: a.label, Explain: a.explain,
		Post: instanceHref(o.ID) + "/" + name, Back: instanceHref(o.ID), Danger: a.danger,
	}
	return "confirm", http.StatusOK
}

// resultData is the page an action that produces output ends on.
type resultData struct {
	Title  string
	Output string
	Back   string
	Failed bool
}

func (s *Server) action(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(r) {
		http.Error(w, "missing or wrong CSRF token: reload the page and try again", http.StatusForbidden)
		return
	}
	name := r.PathValue("action")
	if !s.supports(name) {
		http.NotFound(w, r)
		return
	}
	o, ok := s.find(r)
	if !ok {
		http.Error(w, "no instance "+o.ID.String(), http.StatusNotFound)
		return
	}
	ctx, cancel := s.withTimeout(r.Context())
	defer cancel()
	id := o.ID
	var err error
	switch name {
	case "restart":
		err = s.b.Restart(ctx, id)
	case "stop":
		err = s.b.(Controller).Stop(ctx, id)
	case "start":
		err = s.b.(Controller).Start(ctx, id)
	case "kill":
		err = s.b.(Controller).Kill(ctx, id)
	case "setup":
		var out bytes.Buffer
		err = s.b.(SetupRunner).Setup(ctx, id, &out)
		res := resultData{Title: "Setup of " + id.String(), Output: out.String(), Back: instanceHref(id)}
		if err != nil {
			res.Failed = true
			res.Output += "\n" + err.Error()
		}
		s.Notify()
		s.renderResult(w, r, res)
		return
	}
	s.log.Info("dashboard action", "action", name, "instance", id.String(), "err", err)
	s.Notify()
	if err != nil {
		s.renderResult(w, r, resultData{Title: actions[name].label + " " + id.String() + " failed", Output: err.Error(), Back: instanceHref(id), Failed: true})
		return
	}
	http.Redirect(w, r, instanceHref(id)+"?done="+name, http.StatusSeeOther)
}

func (s *Server) renderResult(w http.ResponseWriter, r *http.Request, res resultData) {
	code := http.StatusOK
	if res.Failed {
		code = http.StatusBadGateway
	}
	s.page(func(w http.ResponseWriter, r *http.Request, v *view) (string, int) {
		v.Title, v.Nav, v.Data = res.Title, "instances", res
		return "result", code
	})(w, r)
}

// planData is the plan page's.
type planData struct {
	Plan *PlanReport
	Err  string
}

func (s *Server) planPage(w http.ResponseWriter, r *http.Request, v *view) (string, int) {
	v.Title, v.Nav = "Plan", "plan"
	ctx, cancel := s.withTimeout(r.Context())
	defer cancel()
	p, err := s.b.Plan(ctx)
	d := planData{Plan: p}
	if err != nil {
		d.Err = err.Error()
	}
	v.Data = d
	return "plan", http.StatusOK
}

func (s *Server) applyAction(w http.ResponseWriter, r *http.Request) {
	if !s.checkCSRF(r) {
		http.Error(w, "missing or wrong CSRF token: reload the page and try again", http.StatusForbidden)
		return
	}
	ctx, cancel := s.withTimeout(r.Context())
	defer cancel()
	rep, err := s.b.Apply(ctx)
	s.Notify()
	s.log.Info("dashboard action", "action", "apply", "err", err)
	s.page(func(w http.ResponseWriter, r *http.Request, v *view) (string, int) {
		v.Title, v.Nav = "Applied", "plan"
		d := applyData{Report: rep}
		if err != nil {
			d.Err = err.Error()
		}
		v.Data = d
		if err != nil && rep == nil {
			return "applied", http.StatusBadGateway
		}
		return "applied", http.StatusOK
	})(w, r)
}

type applyData struct {
	Report *ApplyReport
	Err    string
}

// pluginsData is the plugins page's.
type pluginsData struct {
	Plugins []Plugin
}

func (s *Server) pluginsPage(w http.ResponseWriter, r *http.Request, v *view) (string, int) {
	v.Title, v.Nav = "Plugins", "plugins"
	ps := slices.Clone(s.b.Plugins())
	for i := range ps {
		ps[i].Source = redact.Source(ps[i].Source)
		for j := range ps[i].Params {
			if ps[i].Params[j].Secret {
				ps[i].Params[j].Default = ""
			}
		}
	}
	slices.SortFunc(ps, func(a, b Plugin) int { return strings.Compare(a.Plug, b.Plug) })
	v.Data = pluginsData{Plugins: ps}
	return "plugins", http.StatusOK
}

func (s *Server) historyPage(w http.ResponseWriter, r *http.Request, v *view) (string, int) {
	s.track(nil, s.b.Status())
	v.Title, v.Nav = "History", "history"
	s.mu.Lock()
	h := slices.Clone(s.history)
	s.mu.Unlock()
	slices.Reverse(h)
	v.Data = h
	return "history", http.StatusOK
}

// track remembers exits and reconciles it has not seen yet: the API shows
// only the last of each, the pages show a few.
func (s *Server) track(obs []InstanceStatus, st Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range obs {
		s.trackExitLocked(o)
	}
	if l := st.Daemon.LastReconcile; l != nil {
		if n := len(s.history); n == 0 || !s.history[n-1].At.Equal(l.At) {
			s.history = append(s.history, *l)
			if len(s.history) > maxHistory {
				s.history = s.history[len(s.history)-maxHistory:]
			}
		}
	}
}

// trackExitLocked remembers o's last exit unless it has seen it. Called
// with s.mu held.
func (s *Server) trackExitLocked(o InstanceStatus) {
	if o.LastExit == nil {
		return
	}
	ex := s.exits[o.ID]
	if n := len(ex); n > 0 && ex[n-1].At.Equal(o.LastExit.At) {
		return
	}
	ex = append(ex, *o.LastExit)
	if len(ex) > maxExits {
		ex = ex[len(ex)-maxExits:]
	}
	s.exits[o.ID] = ex
}
