package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/plugs-dev/plugs/instance"
)

// Hooks run with systemd's semantics (ExecStartPre, ExecStartPost,
// ExecStop), each through RunOnce: in the plugin's directory, with the
// instance's environment, PLUGS_CONFIG and PLUGS_HOOK=<name>, output
// appended to the instance's output.log, and nothing of the hook left
// running when it returns.
//
//   - pre_start runs before every start of the process, bounded by
//     Hooks.Timeout; if it fails, the start fails ("pre_start exited 3").
//     For the first process of a Start (a create, a replace, a rollback)
//     the instance is then failed and Start returns the error, as a
//     systemd start job fails with its ExecStartPre: nothing retries it
//     behind the caller's back. Before a restart (after a crash, an
//     unhealthy process, a failed post_start, Restart) it is retried with
//     the restart policy's backoff.
//   - post_start runs once the process is ready (Options.AwaitReady, the
//     readiness hook point, returns: the daemon's health checks, like
//     ExecStartPost after a Type=notify service's READY=1), bounded by
//     Hooks.Timeout, while the instance is supervised as usual; if it
//     fails, the process is stopped and the start counts as failed, with
//     backoff ("post_start exited 2"). A process not ready by its deadline
//     gets no post_start ("post_start not run: not ready after 1m0s" in
//     its log).
//   - pre_stop runs before the stop signal of a requested stop, restart or
//     replace (not after a crash: there is nothing left to stop), bounded
//     by stop_timeout; the stop signal follows whatever it did.

// hookOutcome describes how a hook ended, or is nil when it exited 0:
// "pre_start exited 3", "post_start killed by SIGKILL", "pre_stop timed
// out after 10s", "pre_start oom-killed at its memory limit",
// "pre_start: executable ... not found".
func hookOutcome(name string, res Result, err error) error {
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", name, err)
	case res.TimedOut:
		return fmt.Errorf("%s timed out after %s", name, res.Duration.Round(time.Millisecond))
	case res.Canceled:
		return fmt.Errorf("%s canceled", name)
	case res.OOMKilled:
		return fmt.Errorf("%s oom-killed at its memory limit", name)
	case res.Signal != "":
		return fmt.Errorf("%s killed by %s", name, res.Signal)
	case res.ExitCode != 0:
		return fmt.Errorf("%s exited %d", name, res.ExitCode)
	}
	return nil
}

// runHook runs one hook of the instance; nil when it exited 0 or there is
// none. Its failure is also written to the instance's log, beside its output.
func (in *supervised) runHook(ctx context.Context, name string, argv []string, timeout time.Duration) error {
	if len(argv) == 0 {
		return nil
	}
	spec := in.currentSpec()
	if timeout <= 0 {
		timeout = instance.DefaultHookTimeout
	}
	res, err := in.r.RunOnce(ctx, Once{
		Spec: spec, Command: argv,
		Env:    map[string]string{"PLUGS_HOOK": name},
		Stdout: in.out, Stderr: in.out,
		Timeout: timeout, KillAfter: min(timeout, spec.StopTimeout),
	})
	out := hookOutcome(name, res, err)
	if out != nil {
		in.r.log.Warn("hook failed", "plug", in.id.Plug, "instance", in.id.Instance, "hook", name, "err", out)
		_, _ = fmt.Fprintf(in.out, "plugs: %s\n", out)
	}
	return out
}

// postStart runs the post_start hook once p is ready, in its own
// goroutine; the channel receives its outcome once (nil: it exited 0, or
// there is none). cancel ends it early (the process exited or is being
// stopped). A process that does not become ready (Options.AwaitReady
// fails: its deadline passed) gets no post_start, as systemd runs no
// ExecStartPost for a start that timed out; that is logged, and its
// health checks say why it is not ready.
func (in *supervised) postStart(p *process) (<-chan error, context.CancelFunc) {
	done := make(chan error, 1)
	hooks := in.currentSpec().Hooks
	if len(hooks.PostStart) == 0 {
		done <- nil
		return done, func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		if ready := in.r.opts.AwaitReady; ready != nil {
			if err := ready(ctx, in.id, p.pid); err != nil {
				if ctx.Err() == nil {
					in.r.log.Warn("post_start not run", "plug", in.id.Plug, "instance", in.id.Instance, "err", err)
					_, _ = fmt.Fprintf(in.out, "plugs: post_start not run: %s\n", err)
				}
				done <- nil // not ready: the health checks say so, not post_start
				return
			}
		}
		done <- in.runHook(ctx, "post_start", hooks.PostStart, hooks.Timeout)
	}()
	return done, cancel
}

// Setup state: `plugs setup PLUG` writes into the plug's setup folder,
// never into the read-only plugin tree, and marks it done; an instance
// whose spec says SetupRequired stays in StateNeedsSetup until then.

// SetupDir is the setup folder of a plug: <state>/setup/<plug>. Every
// instance of the plug and its setup program get it as PLUGS_SETUP_DIR.
func SetupDir(stateDir, plug string) string {
	return filepath.Join(stateDir, "setup", plug)
}

// setupDoneFile marks a plug's setup as done. ".done" cannot be a plug
// name (names start with a letter or digit), so it never is a setup folder.
func setupDoneFile(stateDir, plug string) string {
	return filepath.Join(stateDir, "setup", ".done", plug)
}

// SetupDone reports whether `plugs setup` has completed for plug.
func SetupDone(stateDir, plug string) bool {
	_, err := os.Stat(setupDoneFile(stateDir, plug))
	return err == nil
}

// MarkSetupDone records that the setup program of plug exited 0; a Restart
// of the plug's instances then starts them.
func MarkSetupDone(stateDir, plug string) error {
	name := setupDoneFile(stateDir, plug)
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return fmt.Errorf("mark setup done: %w", err)
	}
	if err := writeFileAtomic(name, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		return fmt.Errorf("mark setup done: %w", err)
	}
	return nil
}

// ensureSetupDir makes the plug's setup folder if it is missing.
func ensureSetupDir(stateDir, plug string) error {
	dir := SetupDir(stateDir, plug)
	err := os.Mkdir(dir, 0o700)
	if errors.Is(err, os.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(dir), 0o700); err == nil {
			err = os.Mkdir(dir, 0o700)
		}
	}
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("setup folder: %w", err)
	}
	return nil
}

// needsSetupReason is the status reason of an instance in StateNeedsSetup.
func needsSetupReason(plug string) string {
	return "its plugin must be set up first: run plugs setup " + plug
}
