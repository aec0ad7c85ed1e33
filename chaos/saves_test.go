package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/api"
)

// sleeperFiles is a shell plugin that runs until stopped, with a param gen
// that the saves test changes.
func sleeperFiles(id string) map[string]string {
	return map[string]string{
		"plugins/sleeper/plugin.hcl": fmt.Sprintf(`plugin "sleeper" {
  version = "1.0.0"
  kind    = "script"
  command = ["sh", "./run.sh", %q]
  param "gen" {
    type    = string
    default = "0"
  }
}
`, id),
		"plugins/sleeper/run.sh": "echo \"started $PLUGS_PLUG/$PLUGS_INSTANCE\"\nwhile :; do sleep 1; done\n",
	}
}

// savesDeployment is a valid plugs.hcl: plugs s0, s1 and, with third, s2,
// each with param gen.
func savesDeployment(id, gen string, third bool) string {
	var b strings.Builder
	n := 2
	if third {
		n = 3
	}
	for i := range n {
		fmt.Fprintf(&b, `plug "s%d" {
  source       = "./plugins/sleeper"
  env          = { CHAOS_RUN = %q }
  stop_timeout = "2s"
  params       = { gen = %q }
}
`, i, id, gen)
	}
	return b.String()
}

// invalidDeployments are broken saves: a syntax error, an unknown
// argument, an undeclared param, a plug without source.
var invalidDeployments = []string{
	"plug \"s0\" {\n  source = \"./plugins/sleeper\"\n",
	"plug \"s0\" {\n  source = \"./plugins/sleeper\"\n  bogus = 1\n}\n",
	"plug \"s0\" {\n  source = \"./plugins/sleeper\"\n  params = { nope = \"x\" }\n}\n",
	"plug \"s0\" {\n}\n",
}

// TestConfigSaveStorm saves plugs.hcl 100 times within a second, valid and
// invalid versions mixed, atomically and in place: the running set ends as
// the last (valid) save says, and the daemon's goroutines and open files
// return to their baseline. A last invalid save then changes nothing.
func TestConfigSaveStorm(t *testing.T) {
	dir := t.TempDir()
	id := runID(t)
	t.Cleanup(func() { killMarked(id) })
	files := sleeperFiles(id)
	files["plugs.hcl"] = savesDeployment(id, "0", true)
	writeFiles(t, dir, files)
	hcl := filepath.Join(dir, "plugs.hcl")
	all := []string{"s0/default", "s1/default", "s2/default"}

	d := startDaemon(t, dir)
	st := d.waitReady()
	addr := st.Daemon.MetricsAddr
	d.waitInstances("the first converge", allRunning(all))
	baseG := metric(t, addr, "go_goroutines")
	baseFD, err := openFDs(d.pid())
	if err != nil {
		t.Fatal(err)
	}

	valid, invalid, inPlace := 0, 0, 0
	interval := size.SaveWindow / time.Duration(size.Saves)
	start := time.Now()
	for i := range size.Saves {
		var body string
		switch {
		case i == size.Saves-1:
			body = savesDeployment(id, "final", true)
			valid++
		case i%2 == 1:
			body = savesDeployment(id, fmt.Sprint(i), i%4 == 1)
			valid++
		default:
			body = invalidDeployments[(i/2)%len(invalidDeployments)]
			invalid++
		}
		if i%3 == 0 && i != size.Saves-1 {
			// In place, in two writes: the watcher may see half a file.
			inPlace++
			if err := writeInTwo(hcl, []byte(body)); err != nil {
				t.Fatal(err)
			}
		} else if err := writeAtomic(hcl, []byte(body)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * interval)))
	}
	took := time.Since(start)

	insts := d.waitInstances("the state of the last save", func(m map[string]api.InstanceStatus) bool {
		if !allRunning(all)(m) {
			return false
		}
		for _, id := range all {
			if gen, _ := configParam(d.stateDir, id, "gen"); gen != "final" {
				return false
			}
		}
		return true
	})
	if st := d.status(); st == nil || st.Daemon.LastReconcile == nil || st.Daemon.LastReconcile.Error != "" {
		t.Errorf("the last reconcile after a valid save failed: %+v", st)
	}
	for _, id := range all {
		if p, err := readProc(insts[id].PID); err != nil || p.PPID != d.pid() {
			t.Errorf("%s: pid %d is not a live child of the daemon: %v", id, insts[id].PID, err)
		}
	}
	if n := len(marked(id)); n < len(all) {
		t.Errorf("%d plugin processes alive, want at least %d", n, len(all))
	}

	// Goroutines and descriptors of the replaced instances are released.
	const slackG, slackFD = 8, 4
	var g float64
	var fds int
	waitFor(t, "goroutines and fds back near the baseline", func() (bool, string) {
		g = metric(t, addr, "go_goroutines")
		fds, _ = openFDs(d.pid())
		return g <= baseG+slackG && fds <= baseFD+slackFD,
			fmt.Sprintf("goroutines %v (baseline %v), fds %d (baseline %d)", g, baseG, fds, baseFD)
	})
	ok := metric(t, addr, `plugs_reconcile_total{result="success"}`)
	failed := metric(t, addr, `plugs_reconcile_total{result="error"}`)

	// An invalid save now changes nothing, and is reported.
	if err := writeAtomic(hcl, []byte(invalidDeployments[1])); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the invalid save reported", func() (bool, string) {
		st := d.status()
		return st != nil && st.Daemon.LastReconcile != nil && st.Daemon.LastReconcile.Error != "", "no error yet"
	})
	after := byID(d.status())
	for _, id := range all {
		if after[id].PID != insts[id].PID {
			t.Errorf("%s: pid %d after an invalid save, was %d", id, after[id].PID, insts[id].PID)
		}
	}
	figure(t, "config-saves", "%d saves in %s (%d valid, %d invalid, %d in place) → %v good and %v failed reconciles; goroutines %v → %v, fds %d → %d after settling; last invalid save changed nothing",
		size.Saves, took.Round(time.Millisecond), valid, invalid, inPlace, ok, failed, baseG, g, baseFD, fds)
	d.stop()
}

// writeInTwo rewrites name in place, in two writes: what a naive editor
// does.
func writeInTwo(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	half := len(data) / 2
	if _, err := f.Write(data[:half]); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data[half:]); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// configParam reads a param from an instance's config.json.
func configParam(stateDir, id, param string) (string, error) {
	plug, inst, _ := strings.Cut(id, "/")
	b, err := os.ReadFile(filepath.Join(stateDir, "instances", plug, inst, "config.json"))
	if err != nil {
		return "", err
	}
	var cfg struct {
		Params map[string]any `json:"params"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return "", err
	}
	return fmt.Sprint(cfg.Params[param]), nil
}
