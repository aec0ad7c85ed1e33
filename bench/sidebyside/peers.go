package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/plugs-dev/plugs/internal/atomicfile"
)

// child is one declared child: a unique name and the marker argument of its
// `sleep` command (a changed param changes the marker).
type child struct {
	name   string
	marker string
}

// peer drives one supervisor through the benchmark's steps. Commands a
// peer runs are the ones its documentation tells a user to run.
type peer interface {
	name() string
	version() string
	available() error
	// configure writes the declaration of children into dir (first call) or
	// rewrites it; start launches the supervisor and returns its root pid.
	configure(dir string, children []child) error
	start(dir string) (int, error)
	// apply makes a running supervisor adopt the declaration last written
	// by configure (old is the previous declaration); every command it
	// runs is killed at deadline (errTimedOut).
	apply(dir string, old, children []child, deadline time.Time) error
	// stop asks the supervisor to stop everything and exit.
	stop(dir string, root int) error
	// commands documents what apply and stop run, for BENCHMARKS.md.
	commands() string
}

func run(dir string, env []string, name string, args ...string) error {
	return runWithin(startLimit, dir, env, name, args...)
}

// runBy runs a command and kills it at deadline.
func runBy(deadline time.Time, dir string, env []string, name string, args ...string) error {
	return runWithin(time.Until(deadline), dir, env, name, args...)
}

// errTimedOut is returned by runWithin when the command outlived its limit.
var errTimedOut = errors.New("timed out")

// runWithin runs a command and kills it once limit has passed.
func runWithin(limit time.Duration, dir string, env []string, name string, args ...string) error {
	if limit <= 0 {
		return fmt.Errorf("%s %s: %w: no time left", name, strings.Join(args, " "), errTimedOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s: %w after %v", name, strings.Join(args, " "), errTimedOut, limit)
	}
	if err != nil {
		tail := string(out)
		if len(tail) > 400 {
			tail = tail[len(tail)-400:]
		}
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, tail)
	}
	return nil
}

func startDetached(dir string, env []string, logName, name string, args ...string) (int, error) {
	// Appended to: a second start of the same run keeps the first's log.
	logf, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	go func() { _ = cmd.Wait() }() // reap it whenever it exits
	return cmd.Process.Pid, nil
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	return atomicfile.Write(path, data, mode, atomicfile.Fast)
}

func versionOf(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

func debVersion(pkg string) string {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return "unknown"
	}
	return string(out)
}

// --- baseline ---------------------------------------------------------------

type baselinePeer struct{ bin string }

func (p baselinePeer) name() string    { return "baseline" }
func (p baselinePeer) version() string { return "minimal Go fork/exec supervisor (bench/baseline)" }
func (p baselinePeer) available() error {
	_, err := os.Stat(p.bin)
	return err
}
func (p baselinePeer) configure(dir string, cs []child) error {
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "%s %s\n", c.name, c.marker)
	}
	return writeAtomic(filepath.Join(dir, "desired.txt"), []byte(b.String()), 0o644)
}
func (p baselinePeer) start(dir string) (int, error) {
	return startDetached(dir, nil, "baseline.log", p.bin, filepath.Join(dir, "desired.txt"))
}
func (p baselinePeer) apply(dir string, _, _ []child, _ time.Time) error {
	return syscall.Kill(rootPID(dir), syscall.SIGHUP)
}
func (p baselinePeer) stop(_ string, root int) error { return syscall.Kill(root, syscall.SIGTERM) }
func (p baselinePeer) commands() string {
	return "rewrite desired.txt, `kill -HUP`; stop: `kill -TERM`"
}

// rootPID is recorded by the driver for peers whose apply signals the root.
func rootPID(dir string) int {
	b, _ := os.ReadFile(filepath.Join(dir, "root.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// --- plugs ------------------------------------------------------------------

type plugsPeer struct{ bin string }

func (p plugsPeer) name() string    { return "plugs" }
func (p plugsPeer) version() string { return versionOf(p.bin, "version") }
func (p plugsPeer) available() error {
	_, err := os.Stat(p.bin)
	return err
}
func (p plugsPeer) configure(dir string, cs []child) error {
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		return err
	}
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "plug %q {\n  source = \"./empty\"\n  plugin {\n    kind    = \"script\"\n    command = [\"sleep\", %q]\n  }\n}\n\n", c.name, c.marker)
	}
	return writeAtomic(filepath.Join(dir, "plugs.hcl"), []byte(b.String()), 0o644)
}

// prepare fetches the plugins before the timed start: a host runs plugins
// that CI or `plugs fetch` already brought into its state directory, and
// the other supervisors have nothing to fetch either.
func (p plugsPeer) prepare(dir string) error {
	return run(dir, nil, p.bin, "fetch", "-q", "-f", "plugs.hcl")
}

func (p plugsPeer) start(dir string) (int, error) {
	// The embedded broker's address is in every instance's config.json: a
	// fixed port, as a host has, lets a second start find the files as
	// they should be (port 0 would change them all).
	port, err := brokerPort(dir)
	if err != nil {
		return 0, err
	}
	// --sandbox=false: the peers confine nothing either; the sandbox's own
	// cost is runner's BenchmarkStart1000Sandboxed.
	return startDetached(dir, nil, "plugs.log", p.bin, "run", "-f", "plugs.hcl",
		"--metrics-addr", "127.0.0.1:0", "--broker-addr", "127.0.0.1:"+port, "--ui-addr", "127.0.0.1:0", "--sandbox=false")
}

// brokerPort is the port of the run in dir: a free one, picked once.
func brokerPort(dir string) (string, error) {
	name := filepath.Join(dir, "broker.port")
	if b, err := os.ReadFile(name); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port, os.WriteFile(name, []byte(port+"\n"), 0o644)
}

// apply runs plugs apply, as a user (or CI) does after replacing
// plugs.hcl; it returns once the daemon has converged. The daemon also
// watches the file: that reconcile of the same save finds it applied.
func (p plugsPeer) apply(dir string, _, _ []child, deadline time.Time) error {
	return runBy(deadline, dir, nil, p.bin, "apply", "-f", "plugs.hcl")
}
func (p plugsPeer) stop(_ string, root int) error { return syscall.Kill(root, syscall.SIGTERM) }
func (p plugsPeer) commands() string {
	return "`plugs fetch` before the first timed start; rewrite plugs.hcl, `plugs apply` (it fetches the new plugs); stop: `kill -TERM`"
}

// --- supervisord ------------------------------------------------------------

type supervisordPeer struct{}

func (supervisordPeer) name() string    { return "supervisord" }
func (supervisordPeer) version() string { return "supervisor " + versionOf("supervisord", "--version") }
func (supervisordPeer) available() error {
	_, err := exec.LookPath("supervisord")
	return err
}

// supervisordMinFDs is the minfds of a supervisord of n children: it keeps
// about three descriptors per child (its stdin and stdout pipes, stderr
// redirected into stdout, and the log file), and it must not be much more:
// every forked child closes each descriptor from 3 up to minfds, in Python,
// before it execs (minfds = 16,384 made each start close 16,381).
func supervisordMinFDs(n int) int { return 4*n + 256 }

func (supervisordPeer) configure(dir string, cs []child) error {
	conf := fmt.Sprintf(`[unix_http_server]
file=%[1]s/supervisor.sock

[supervisord]
nodaemon=true
logfile=%[1]s/supervisord.log
pidfile=%[1]s/supervisord.pid
childlogdir=%[1]s/logs
minfds=%[2]d

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%[1]s/supervisor.sock

[include]
files = %[1]s/conf.d/*.conf
`, dir, supervisordMinFDs(len(cs)))
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "supervisord.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	for _, c := range cs {
		fmt.Fprintf(&b, "[program:%s]\ncommand=sleep %s\nautorestart=true\nstartsecs=0\nredirect_stderr=true\nstdout_logfile=%s/logs/%s.log\n\n", c.name, c.marker, dir, c.name)
	}
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, "conf.d", "children.conf"), []byte(b.String()), 0o644)
}
func (supervisordPeer) start(dir string) (int, error) {
	return startDetached(dir, nil, "stdout.log", "supervisord", "-c", filepath.Join(dir, "supervisord.conf"))
}
func (supervisordPeer) apply(dir string, _, _ []child, deadline time.Time) error {
	return runBy(deadline, dir, nil, "supervisorctl", "-c", filepath.Join(dir, "supervisord.conf"), "update")
}
func (supervisordPeer) stop(_ string, root int) error { return syscall.Kill(root, syscall.SIGTERM) }
func (supervisordPeer) commands() string {
	return "rewrite conf.d, `supervisorctl update`; stop: `kill -TERM` supervisord; minfds = 4N+256"
}

// --- s6 -----------------------------------------------------------------------

type s6Peer struct{}

func (s6Peer) name() string    { return "s6" }
func (s6Peer) version() string { return "s6 " + debVersion("s6") }
func (s6Peer) available() error {
	_, err := exec.LookPath("s6-svscan")
	return err
}

// writeServiceDirs writes one service directory per child under scan,
// atomically (built beside, renamed in) so no scanner sees a half one.
func writeServiceDirs(scan string, cs []child) error {
	if err := os.MkdirAll(scan, 0o755); err != nil {
		return err
	}
	for _, c := range cs {
		dst := filepath.Join(scan, c.name)
		run := fmt.Sprintf("#!/bin/sh\nexec sleep %s\n", c.marker)
		if _, err := os.Stat(dst); err == nil {
			if err := writeAtomic(filepath.Join(dst, "run"), []byte(run), 0o755); err != nil {
				return err
			}
			continue
		}
		tmp := filepath.Join(filepath.Dir(scan), ".new-"+c.name)
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, "run"), []byte(run), 0o755); err != nil {
			return err
		}
		if err := os.Rename(tmp, dst); err != nil { // a service folder appears whole: a folder rename
			return err
		}
	}
	return nil
}

func diff(old, cs []child) (removed, added, changed []child) {
	o := map[string]child{}
	for _, c := range old {
		o[c.name] = c
	}
	n := map[string]bool{}
	for _, c := range cs {
		n[c.name] = true
		if oc, ok := o[c.name]; !ok {
			added = append(added, c)
		} else if oc.marker != c.marker {
			changed = append(changed, c)
		}
	}
	for _, c := range old {
		if !n[c.name] {
			removed = append(removed, c)
		}
	}
	return
}

func names(dir string, cs []child) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = filepath.Join(dir, c.name)
	}
	sort.Strings(out)
	return out
}

func (s6Peer) configure(dir string, cs []child) error {
	return writeServiceDirs(filepath.Join(dir, "scan"), cs)
}
func (s6Peer) start(dir string) (int, error) {
	// s6-svscan supervises at most 500 services unless told otherwise.
	entries, _ := os.ReadDir(filepath.Join(dir, "scan"))
	limit := strconv.Itoa(2*len(entries) + 100)
	return startDetached(dir, nil, "s6.log", "s6-svscan", "-c", limit, filepath.Join(dir, "scan"))
}
func (s6Peer) apply(dir string, old, cs []child, deadline time.Time) error {
	scan := filepath.Join(dir, "scan")
	removed, _, changed := diff(old, cs)
	for _, c := range removed {
		if err := os.RemoveAll(filepath.Join(scan, c.name)); err != nil {
			return err
		}
	}
	// configure already wrote new and changed run scripts; rescan picks up
	// new directories and (-n) stops the supervisors of removed ones.
	if err := runBy(deadline, dir, nil, "s6-svscanctl", "-an", scan); err != nil {
		return err
	}
	// s6-svc takes one service directory at a time.
	for _, svc := range names(scan, changed) {
		if err := runBy(deadline, dir, nil, "s6-svc", "-r", svc); err != nil {
			return err
		}
	}
	return nil
}
func (s6Peer) stop(dir string, _ int) error {
	return run(dir, nil, "s6-svscanctl", "-t", filepath.Join(dir, "scan"))
}
func (s6Peer) commands() string {
	return "remove/add service dirs, `s6-svscanctl -an`, `s6-svc -r` the changed ones; stop: `s6-svscanctl -t`"
}

// --- runit --------------------------------------------------------------------

type runitPeer struct{}

func (runitPeer) name() string    { return "runit" }
func (runitPeer) version() string { return "runit " + debVersion("runit") }
func (runitPeer) available() error {
	_, err := exec.LookPath("runsvdir")
	return err
}
func (runitPeer) configure(dir string, cs []child) error {
	return writeServiceDirs(filepath.Join(dir, "service"), cs)
}
func (runitPeer) start(dir string) (int, error) {
	return startDetached(dir, nil, "runit.log", "runsvdir", "-P", filepath.Join(dir, "service"))
}
func (runitPeer) apply(dir string, old, cs []child, deadline time.Time) error {
	svc := filepath.Join(dir, "service")
	removed, _, changed := diff(old, cs)
	if len(removed) > 0 {
		// runsv exits for a removed directory only once its service is
		// down, so take them down first, as runit's documentation says.
		if err := runBy(deadline, dir, nil, "sv", append([]string{"-w", "30", "force-stop"}, names(svc, removed)...)...); err != nil {
			return err
		}
		for _, c := range removed {
			if err := os.RemoveAll(filepath.Join(svc, c.name)); err != nil {
				return err
			}
		}
	}
	if len(changed) > 0 {
		return runBy(deadline, dir, nil, "sv", append([]string{"-w", "30", "restart"}, names(svc, changed)...)...)
	}
	return nil
}
func (runitPeer) stop(dir string, root int) error {
	entries, _ := filepath.Glob(filepath.Join(dir, "service", "*"))
	if len(entries) > 0 {
		if err := run(dir, nil, "sv", append([]string{"-w", "30", "force-stop"}, entries...)...); err != nil {
			return err
		}
	}
	return syscall.Kill(root, syscall.SIGHUP)
}
func (runitPeer) commands() string {
	return "`sv force-stop` + remove dirs, add dirs (runsvdir rescans every 5 s), `sv restart` the changed ones; stop: `sv force-stop` all, then `kill -HUP runsvdir`"
}

// --- pm2 ------------------------------------------------------------------------

type pm2Peer struct{ bin string }

func (p pm2Peer) name() string { return "pm2" }

// version reads pm2's package.json: `pm2 --version` would spawn a pm2
// daemon in ~/.pm2 as a side effect.
func (p pm2Peer) version() string {
	v := "unknown"
	real, err := filepath.EvalSymlinks(p.bin)
	if err == nil {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(real), "..", "package.json"))
		var pkg struct{ Version string }
		if err == nil && json.Unmarshal(b, &pkg) == nil && pkg.Version != "" {
			v = pkg.Version
		}
	}
	return "pm2 " + v + ", node " + versionOf("node", "--version")
}
func (p pm2Peer) available() error {
	if _, err := os.Stat(p.bin); err != nil {
		return err
	}
	_, err := exec.LookPath("node")
	return err
}
func (p pm2Peer) env(dir string) []string {
	return []string{"PM2_HOME=" + filepath.Join(dir, "pm2home")}
}
func pm2Apps(cs []child) string {
	var b strings.Builder
	b.WriteString("module.exports = { apps: [\n")
	for _, c := range cs {
		fmt.Fprintf(&b, "  { name: %q, script: \"sleep\", args: %q, interpreter: \"none\", autorestart: true },\n", c.name, c.marker)
	}
	b.WriteString("] };\n")
	return b.String()
}
func (p pm2Peer) configure(dir string, cs []child) error {
	return writeAtomic(filepath.Join(dir, "ecosystem.config.js"), []byte(pm2Apps(cs)), 0o644)
}
func (p pm2Peer) start(dir string) (int, error) {
	if err := run(dir, p.env(dir), p.bin, "start", "ecosystem.config.js"); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "pm2home", "pm2.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
func (p pm2Peer) apply(dir string, old, cs []child, deadline time.Time) error {
	removed, _, _ := diff(old, cs)
	if len(removed) > 0 {
		if err := os.WriteFile(filepath.Join(dir, "removed.config.js"), []byte(pm2Apps(removed)), 0o644); err != nil {
			return err
		}
		if err := runBy(deadline, dir, p.env(dir), p.bin, "delete", "removed.config.js"); err != nil {
			return err
		}
	}
	return runBy(deadline, dir, p.env(dir), p.bin, "startOrRestart", "ecosystem.config.js")
}
func (p pm2Peer) stop(dir string, _ int) error { return run(dir, p.env(dir), p.bin, "kill") }
func (p pm2Peer) commands() string {
	return "`pm2 delete` a file of the removed apps, `pm2 startOrRestart ecosystem.config.js`; stop: `pm2 kill`"
}

// preparer is a peer with an untimed step before its start.
type preparer interface {
	prepare(dir string) error
}

// prepare runs p's untimed step, if it has one.
func prepare(p peer, dir string) error {
	if pp, ok := p.(preparer); ok {
		return pp.prepare(dir)
	}
	return nil
}
