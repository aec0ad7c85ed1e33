package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
	"github.com/plugs-dev/plugs/internal/syncbuf"
)

// unitCommand returns the value of key= in the unit file (continuation
// lines joined), split into words as systemd does for a command line
// without quotes.
func unitCommand(t *testing.T, unit, key string) []string {
	t.Helper()
	joined := strings.ReplaceAll(unit, "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return strings.Fields(v)
		}
	}
	t.Fatalf("the unit has no %s=", key)
	return nil
}

// TestSystemdBundleRollout walks the offline rollout that
// examples/systemd/plugs.service documents, with its own ExecStart and
// ExecReload commands (paths moved into a temporary /var/lib/plugs, the
// listen addresses to free ports): a new bundle is moved over
// current.tar.gz and the daemon reloaded; only the changed plug restarts.
// A bundle that does not verify changes nothing.
func TestSystemdBundleRollout(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "examples", "systemd", "plugs.service"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir() // stands for /var/lib/plugs
	subst := func(words []string, pid int) []string {
		out := make([]string, 0, len(words))
		for _, w := range words {
			w = strings.ReplaceAll(w, "/usr/local/bin/plugs", plugsBin)
			w = strings.ReplaceAll(w, "/var/lib/plugs", root)
			w = strings.ReplaceAll(w, "127.0.0.1:9469", "127.0.0.1:0")
			w = strings.ReplaceAll(w, "$MAINPID", strconv.Itoa(pid))
			out = append(out, w)
		}
		return out
	}
	unit := string(raw)
	start := append(subst(unitCommand(t, unit, "ExecStart"), 0), "--broker-addr", "127.0.0.1:0", "--ui-addr", "127.0.0.1:0",
		// The sandbox's plugin users cannot reach the test's 0700 folders
		// (as in the other e2e tests).
		"--sandbox=false")
	reloadCmd := unitCommand(t, unit, "ExecReload")

	// Two bundles built as CI builds them: b's token differs.
	src := t.TempDir()
	bundle := func(name, tokenB string) string {
		writeFile(t, filepath.Join(src, "plugs.hcl"), fmt.Sprintf(`plug "a" {
  source = %q
  params = { token = "a-token" }
}
plug "b" {
  source = %q
  params = { token = %q }
}
`, testPlugin(t, "sleeper"), testPlugin(t, "sleeper"), tokenB))
		out := filepath.Join(t.TempDir(), name)
		mustPlugs(t, src, nil, "bundle", "-q", "-o", out, "-f", filepath.Join(src, "plugs.hcl"), "--state-dir", filepath.Join(src, ".plugs"))
		return out
	}
	first, second := bundle("first.tar.gz", "b-token-1"), bundle("second.tar.gz", "b-token-2")
	current := filepath.Join(root, "current.tar.gz")
	copyFile(t, first, current)

	log := &syncbuf.Buffer{}
	d := exec.Command(start[0], start[1:]...)
	d.Stdout, d.Stderr = log, log
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.Wait() }()
	t.Cleanup(func() {
		_ = d.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(waitBound):
			_ = d.Process.Kill()
			<-exited
		}
	})
	stateDir := filepath.Join(root, "state")
	status := func() (*api.Status, error) {
		c, err := api.Dial(stateDir)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.Status(ctx)
	}
	pidsOf := func(st *api.Status) map[string]int {
		m := map[string]int{}
		for _, i := range st.Instances {
			if i.State == "running" {
				m[i.Plug] = i.PID
			}
		}
		return m
	}
	var before map[string]int
	eventually(t, "a and b running from the first bundle", func() error {
		st, err := status()
		if err != nil {
			return err
		}
		if before = pidsOf(st); len(before) != 2 {
			return fmt.Errorf("running: %v", before)
		}
		return nil
	})
	reload := func() {
		t.Helper()
		words := subst(reloadCmd, d.Process.Pid)
		if out, err := exec.Command(words[0], words[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("ExecReload %v: %v\n%s", words, err, out)
		}
	}

	// The documented rollout: copy next to it, mv over, reload.
	copyFile(t, second, current+".new")
	if err := os.Rename(current+".new", current); err != nil {
		t.Fatal(err)
	}
	reload()
	var after map[string]int
	eventually(t, "b replaced after the reload", func() error {
		st, err := status()
		if err != nil {
			return err
		}
		after = pidsOf(st)
		if len(after) != 2 || after["b"] == before["b"] {
			return fmt.Errorf("running: %v (before %v)", after, before)
		}
		return nil
	})
	if after["a"] != before["a"] {
		t.Errorf("a restarted (pid %d -> %d) though nothing of it changed", before["a"], after["a"])
	}

	// A damaged bundle: the reload is refused, nothing changes.
	writeFile(t, current+".new", "not a bundle")
	if err := os.Rename(current+".new", current); err != nil {
		t.Fatal(err)
	}
	reload()
	eventually(t, "the damaged bundle reported", func() error {
		st, err := status()
		if err != nil {
			return err
		}
		if r := st.Daemon.LastReconcile; r == nil || !strings.Contains(r.Error, "unbundle") {
			return fmt.Errorf("last reconcile: %+v", r)
		}
		if got := pidsOf(st); got["a"] != after["a"] || got["b"] != after["b"] {
			t.Errorf("a damaged bundle changed the instances: %v, want %v", got, after)
		}
		return nil
	})
	if t.Failed() {
		t.Logf("daemon log:\n%s", log.String())
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
