package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/metrics"
	"github.com/plugs-dev/plugs/mqtt"
	"github.com/plugs-dev/plugs/runner"
	"github.com/plugs-dev/plugs/task"
)

// The task side of the daemon (issue 14): task instances are not handed to
// reconcile and the runner's supervision but to a task.Manager, which runs
// them through runner.RunOnce when called (the local API, --api-addr, MQTT
// 5 request/response) or on their schedules.

var (
	_ task.Runner   = taskRunner{}
	_ task.Observer = (*metrics.Tasks)(nil)
)

// taskRunner runs one task process through runner.RunOnce: the instance's
// environment, config.json, process group, timeout and kill rules, as for
// a service. stdout is kept up to the run's cap from its start; the end of
// stderr is kept.
type taskRunner struct{ r *runner.Runner }

func (t taskRunner) RunOnce(ctx context.Context, spec instance.Spec, run task.Run) (task.Outcome, error) {
	out := &headBuffer{max: run.MaxOutput}
	env := map[string]string{"PLUGS_RUN_ID": run.ID}
	for k, v := range run.Env {
		env[k] = v
	}
	start := time.Now()
	res, err := t.r.RunOnce(ctx, runner.Once{
		Spec: spec, Env: env, Stdin: bytes.NewReader(run.Input), Stdout: out,
		TailBytes: task.StderrTail, Timeout: run.Timeout,
	})
	if err != nil {
		return task.Outcome{}, err
	}
	b, cut := out.bytes()
	return task.Outcome{
		ExitCode: res.ExitCode, Signal: res.Signal, TimedOut: res.TimedOut || res.Canceled, OOMKilled: res.OOMKilled,
		Output: b, OutputTruncated: cut, Stderr: res.Stderr,
		StartedAt: start, Duration: res.Duration,
	}, nil
}

// headBuffer keeps the first max bytes written to it and notes the rest.
type headBuffer struct {
	max int
	mu  sync.Mutex
	b   []byte
	cut bool
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	room := h.max - len(h.b)
	if len(p) > room {
		h.cut = true
		h.b = append(h.b, p[:max(room, 0)]...)
	} else {
		h.b = append(h.b, p...)
	}
	return len(p), nil
}

func (h *headBuffer) bytes() ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.b, h.cut
}

// tasks holds the daemon's task side.
type tasks struct {
	d   *daemon
	mgr *task.Manager

	mu    sync.Mutex
	specs map[instance.ID]instance.Spec // the task instances now
	exec  *mqtt.ExecServer

	apiAddr string
	apiDone func()
}

// startTasks makes the task manager (metrics on reg) and serves the remote
// task API when --api-addr is set.
func (d *daemon) startTasks(ctx context.Context, reg prometheus.Registerer) (*tasks, error) {
	t := &tasks{d: d, specs: map[instance.ID]instance.Spec{}, apiDone: func() {}}
	t.mgr = task.NewManager(task.Options{
		Runner:   taskRunner{d.runner},
		StateDir: d.opts.StateDir,
		Observer: metrics.NewTasks(reg),
		OnChange: t.publish,
		Logger:   d.log.With("component", "task"),
	})
	if d.opts.APIAddr == "" {
		return t, nil
	}
	opts := task.ServerOptions{TokenFile: d.opts.APITokenFile, WebConfigFile: d.opts.WebConfigFile, Logger: d.log}
	if err := task.CheckServe(d.opts.APIAddr, opts); err != nil {
		t.mgr.Close()
		return nil, &api.Error{Kind: api.KindInput, Message: err.Error()}
	}
	ln, err := net.Listen("tcp", d.opts.APIAddr)
	if err != nil {
		t.mgr.Close()
		return nil, &api.Error{Kind: api.KindEnv, Message: fmt.Sprintf("task api listen: %v (choose another with --api-addr)", err)}
	}
	t.apiAddr = ln.Addr().String()
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := task.Serve(actx, ln, opts, task.Handler(t.mgr)); err != nil && actx.Err() == nil {
			d.log.Error("task api server", "err", err)
		}
	}()
	t.apiDone = func() { cancel(); <-done }
	d.log.Info("task api listening", "addr", t.apiAddr, "tls", d.opts.WebConfigFile != "", "tokens", d.opts.APITokenFile != "")
	return t, nil
}

// close stops the API, the MQTT calls and the scheduled runs.
func (t *tasks) close() {
	t.apiDone()
	t.mu.Lock()
	exec := t.exec
	t.mu.Unlock()
	if exec != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := exec.Close(ctx); err != nil {
			t.d.log.Warn("mqtt exec close", "err", err)
		}
	}
	t.mgr.Close()
}

// splitTasks parts desired instances into services (reconcile's) and tasks.
func splitTasks(desired []instance.Spec) (services, tasks []instance.Spec) {
	for _, s := range desired {
		if s.Task != nil {
			tasks = append(tasks, s)
		} else {
			services = append(services, s)
		}
	}
	return services, tasks
}

// update hands the manager the task instances of a reconcile; instances no
// longer tasks lose their MQTT state.
func (t *tasks) update(specs []instance.Spec) {
	if err := t.mgr.Update(specs); err != nil {
		t.d.log.Error("task schedules", "err", err)
	}
	t.mu.Lock()
	old := t.specs
	t.specs = make(map[instance.ID]instance.Spec, len(specs))
	for _, s := range specs {
		t.specs[s.ID] = s
	}
	startExec := t.exec == nil && len(specs) > 0
	t.mu.Unlock()
	for id := range old {
		if _, ok := t.specs[id]; !ok {
			t.d.broker.pub.Forget(id.Plug, id.Instance)
		}
	}
	for _, s := range specs {
		t.publish(s.ID)
	}
	if startExec {
		t.startExec()
	}
}

// execReadyWait bounds how long the reconcile that first has a task waits
// for the MQTT exec subscription, so that once it returns (and the daemon
// says it is ready) a call published at once is received, not lost: MQTT
// drops a message no one has subscribed to yet.
const execReadyWait = 5 * time.Second

// publish sends the retained state of a task instance: idle or running,
// and its last run.
func (t *tasks) publish(id instance.ID) {
	t.mu.Lock()
	s, ok := t.specs[id]
	t.mu.Unlock()
	if !ok {
		return
	}
	var st *task.Status
	for _, x := range t.mgr.Status() {
		if x.ID == id {
			st = &x
			break
		}
	}
	msg := mqtt.TaskStateMessage{State: "idle", Version: s.Version, Revision: s.Revision}
	if st != nil {
		if st.Running > 0 {
			msg.State = "running"
		}
		if r := st.LastRun; r != nil {
			msg.Since = r.StartedAt
			msg.LastRun = &mqtt.TaskRun{RunID: r.RunID, Trigger: string(r.Trigger), Result: r.Result,
				ExitCode: r.ExitCode, StartedAt: r.StartedAt, Duration: r.Duration}
		}
	}
	t.d.broker.pub.PublishTaskState(id.Plug, id.Instance, msg)
	t.d.notifyUI()
}

// startExec answers task calls over MQTT 5 on the broker the daemon uses,
// with the daemon's account.
func (t *tasks) startExec() {
	b := t.d.broker
	cfg := mqtt.ExecConfig{URL: b.info.URL, Host: b.pub.Host(), Logger: t.d.log.With("component", "mqtt-exec"), Handler: t.mqttCall}
	if b.config != nil {
		cfg.QoS = 1
		cfg.Username, cfg.Password = b.config.Username, b.config.Password
	} else {
		auth, err := mqtt.LoadAuth(BrokerDir(t.d.opts.StateDir))
		if err != nil {
			t.d.log.Error("mqtt exec: broker credentials", "err", err)
			return
		}
		cfg.Username, cfg.Password = auth.Daemon()
		cfg.KeepAlive = -1 // as the publisher's: a loopback connection to itself
	}
	s, err := mqtt.StartExecServer(cfg)
	if err != nil {
		t.d.log.Error("mqtt exec", "err", err)
		return
	}
	t.mu.Lock()
	t.exec = s
	t.mu.Unlock()
	// A broker that is down is not waited for: supervision never waits on it.
	if b.embedded != nil || b.pub.Connected() {
		ctx, cancel := context.WithTimeout(context.Background(), execReadyWait)
		defer cancel()
		if err := s.Ready(ctx); err != nil {
			_, filter, why := s.Subscribed()
			t.d.log.Warn("mqtt exec: not subscribed yet", "filter", filter, "why", t.d.redact(why))
		}
	}
}

// execState is the daemon status's word on MQTT task calls: empty without
// a task, else whether the exec topics are subscribed now.
func (t *tasks) execState() string {
	t.mu.Lock()
	s := t.exec
	t.mu.Unlock()
	if s == nil {
		return ""
	}
	ok, filter, why := s.Subscribed()
	if ok {
		return "subscribed to " + filter
	}
	return "not subscribed to " + filter + ": " + t.d.redact(why)
}

// mqttCall runs one MQTT call and encodes its answer like the HTTP API's.
func (t *tasks) mqttCall(ctx context.Context, req mqtt.ExecRequest) []byte {
	res, err := t.mgr.Exec(ctx, task.Request{Plug: req.Plug, Instance: req.Instance, Input: req.Input,
		Timeout: req.Timeout, MaxOutput: req.MaxOutput, Trigger: task.TriggerCall})
	var v any = res
	if err != nil {
		_, v = task.ToAPIError(err)
	}
	b, _ := json.Marshal(v)
	return b
}

// tasksHandler is the task API on the local socket (plugs exec, plugs runs).
func (d *daemon) tasksHandler() http.Handler { return task.Handler(d.tasks.mgr) }

// taskStatuses are the rows of plugs status for task instances.
func (t *tasks) statuses() []api.InstanceStatus {
	t.mu.Lock()
	specs := make(map[instance.ID]instance.Spec, len(t.specs))
	for k, v := range t.specs {
		specs[k] = v
	}
	t.mu.Unlock()
	var out []api.InstanceStatus
	for _, st := range t.mgr.Status() {
		s, ok := specs[st.ID]
		if !ok {
			continue
		}
		row := api.InstanceStatus{Plug: st.ID.Plug, Instance: st.ID.Instance, State: "idle",
			Version: s.Version, Revision: s.Revision}
		if st.Running > 0 {
			row.State = "running"
		}
		why := []string{"task"}
		if len(st.Schedule) > 0 {
			why = append(why, "schedule "+strings.Join(st.Schedule, ", "))
		} else {
			why = append(why, "on call")
		}
		if r := st.LastRun; r != nil {
			why = append(why, fmt.Sprintf("last run %s at %s (exit %d)", r.Result, r.StartedAt.UTC().Format(time.RFC3339), r.ExitCode))
			row.LastExit = &api.Exit{Code: r.ExitCode, Signal: r.Signal, At: r.StartedAt.Add(time.Duration(r.Duration * float64(time.Second)))}
		}
		row.Reason = strings.Join(why, "; ")
		out = append(out, row)
	}
	slices.SortFunc(out, func(a, b api.InstanceStatus) int {
		return strings.Compare(a.Plug+"/"+a.Instance, b.Plug+"/"+b.Instance)
	})
	return out
}
