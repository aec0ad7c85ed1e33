package health

import (
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/plugs-dev/plugs/internal/clock"
)

// Options configure a Manager.
type Options struct {
	// StateDir holds the notify sockets (see NotifySocketPath).
	StateDir string
	Clock    clock.Clock  // nil: clock.New()
	Logger   *slog.Logger // nil: discard
	Prober   Prober       // nil: &Probes{}
	// Restart is called, in a goroutine of its own, when check_restart
	// decides an instance must restart; it should restart it through the
	// normal restart backoff. nil: never restart.
	Restart func(id ID, reason string)
	// OnChange is called when an instance's health, readiness, last failure
	// or notify status changed; read the new status with Status. Calls may
	// come from several goroutines at once.
	OnChange func(id ID)
	// OnProbe is told the duration of every active probe (for a histogram).
	OnProbe func(checkType string, d time.Duration)
}

// Manager keeps one health monitor per configured instance.
type Manager struct {
	stateDir string
	clock    clock.Clock
	log      *slog.Logger
	prober   Prober
	restart  func(ID, string)
	onChange func(ID)
	onProbe  func(string, time.Duration)

	mu       sync.Mutex
	monitors map[ID]*monitor
	sockets  map[ID]socketCloser
	// listen binds a notify socket; tests inside a synctest bubble replace
	// it, since a goroutine blocked on a real socket is never idle there.
	listen   func(path string, deliver func(int, map[string]string)) (socketCloser, error)
	lastData map[ID]time.Time // every instance's, checked or not
	closed   bool
}

// New returns a Manager; Close stops it.
func New(opts Options) *Manager {
	m := &Manager{
		stateDir: opts.StateDir, clock: opts.Clock, log: opts.Logger, prober: opts.Prober,
		restart: opts.Restart, onChange: opts.OnChange, onProbe: opts.OnProbe,
		monitors: map[ID]*monitor{}, sockets: map[ID]socketCloser{}, lastData: map[ID]time.Time{},
		listen: func(path string, deliver func(int, map[string]string)) (socketCloser, error) {
			return listenNotify(path, deliver)
		},
	}
	if m.clock == nil {
		m.clock = clock.New()
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.prober == nil {
		m.prober = &Probes{}
	}
	return m
}

func (m *Manager) observeDuration(t string, d time.Duration) {
	if m.onProbe != nil {
		m.onProbe(t, d)
	}
}

// Env is what an instance with configuration cfg must find in its
// environment: NOTIFY_SOCKET for a notify check (and WATCHDOG_USEC when it
// has a watchdog), as systemd gives a Type=notify service. It is stable
// for a given configuration.
func (m *Manager) Env(id ID, cfg Config) map[string]string { return InstanceEnv(m.stateDir, id, cfg) }

// InstanceEnv is Manager.Env for a manager on stateDir.
func InstanceEnv(stateDir string, id ID, cfg Config) map[string]string {
	if !cfg.HasType(TypeNotify) {
		return nil
	}
	env := map[string]string{"NOTIFY_SOCKET": NotifySocketPath(stateDir, id)}
	if w := cfg.Watchdog(); w > 0 {
		env["WATCHDOG_USEC"] = formatUsec(w)
	}
	return env
}

func formatUsec(d time.Duration) string {
	return strconv.FormatInt(d.Microseconds(), 10)
}

// Configure sets the checks of an instance, before its process starts: it
// binds the instance's notify socket when it has a notify check, so that a
// READY=1 sent at once is not lost. Configuring again with the same
// configuration changes nothing; a different one starts the checks over.
func (m *Manager) Configure(id ID, cfg Config) error {
	reconfigure, err := m.configure(id, cfg)
	if reconfigure != nil {
		// Outside m.mu: configure announces the change, and OnChange may
		// ask the Manager for it (Status): under m.mu that deadlocked the
		// daemon's reconcile, its API and its stop.
		reconfigure.configure(cfg)
	}
	return err
}

// configure is Configure under m.mu; it returns the monitor whose checks
// changed, for the caller to reconfigure once m.mu is released.
func (m *Manager) configure(id ID, cfg Config) (reconfigure *monitor, _ error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil
	}
	mo := m.monitors[id]
	if mo == nil {
		mo = newMonitor(m, id, cfg)
		m.monitors[id] = mo
	} else {
		mo.mu.Lock()
		same := reflect.DeepEqual(mo.cfg, cfg)
		mo.mu.Unlock()
		if !same {
			reconfigure = mo
		}
	}
	sock := m.sockets[id]
	want := cfg.HasType(TypeNotify)
	switch {
	case want && sock == nil:
		s, err := m.listen(NotifySocketPath(m.stateDir, id), func(pgid int, fields map[string]string) {
			mo.notify(pgid, fields)
		})
		if err != nil {
			return reconfigure, err
		}
		m.sockets[id] = s
	case !want && sock != nil:
		sock.close()
		delete(m.sockets, id)
	}
	return reconfigure, nil
}

// Remove forgets an instance: its timers stop and its socket is closed.
func (m *Manager) Remove(id ID) {
	m.mu.Lock()
	mo, sock := m.monitors[id], m.sockets[id]
	delete(m.monitors, id)
	delete(m.sockets, id)
	delete(m.lastData, id)
	m.mu.Unlock()
	if mo != nil {
		mo.close()
	}
	if sock != nil {
		sock.close()
	}
}

// Observe tells the manager whether an instance's process runs, and which
// (pid and start time): a new one restarts its checks from pending.
// Instances never configured are ignored.
func (m *Manager) Observe(id ID, running bool, pid int, startedAt time.Time) {
	m.mu.Lock()
	mo := m.monitors[id]
	m.mu.Unlock()
	if mo != nil {
		mo.observe(running, pid, startedAt)
	}
}

// Data records a message on an instance's data topic, received at at.
func (m *Manager) Data(id ID, at time.Time) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.lastData[id] = at
	mo := m.monitors[id]
	m.mu.Unlock()
	if mo != nil {
		mo.data(at)
	}
}

// Notify delivers sd_notify fields as if they came from process group pgid
// (0: unknown) on the instance's socket; for tests and other transports.
func (m *Manager) Notify(id ID, pgid int, fields map[string]string) {
	m.mu.Lock()
	mo := m.monitors[id]
	m.mu.Unlock()
	if mo != nil {
		mo.notify(pgid, fields)
	}
}

// LastData is when an instance last published on its data topic (zero: never).
func (m *Manager) LastData(id ID) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastData[id]
}

// LastDataAll returns every instance's last data time.
func (m *Manager) LastDataAll() map[ID]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.lastData)
}

// Status is the health of one instance; ok is false for one never configured.
func (m *Manager) Status(id ID) (Status, bool) {
	m.mu.Lock()
	mo := m.monitors[id]
	m.mu.Unlock()
	if mo == nil {
		return Status{}, false
	}
	return mo.status(), true
}

// Statuses returns the health of every configured instance.
func (m *Manager) Statuses() map[ID]Status {
	m.mu.Lock()
	mos := slices.Collect(maps.Values(m.monitors))
	m.mu.Unlock()
	out := make(map[ID]Status, len(mos))
	for _, mo := range mos {
		out[mo.id] = mo.status()
	}
	return out
}

// Close stops every monitor and closes every socket.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	mos, socks := m.monitors, m.sockets
	m.monitors, m.sockets = map[ID]*monitor{}, map[ID]socketCloser{}
	m.mu.Unlock()
	for _, mo := range mos {
		mo.close()
	}
	for _, s := range socks {
		s.close()
	}
}

type socketCloser interface{ close() }
