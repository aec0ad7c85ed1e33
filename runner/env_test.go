package runner

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/internal/testplugin"
)

// TestEnvironmentIsClean: an instance gets the basics of the daemon's
// environment, its own PLUGS_* and its declared env; never the daemon's
// secrets or NOTIFY_SOCKET (issue 11).
func TestEnvironmentIsClean(t *testing.T) {
	daemonEnv := []string{
		"PATH=/usr/bin:/bin", "HOME=/home/d", "USER=d", "LOGNAME=d", "SHELL=/bin/bash",
		"LANG=C.UTF-8", "LANGUAGE=en", "LC_TIME=de_DE.UTF-8", "LC_ALL=C", "TZ=Europe/Berlin", "TMPDIR=/var/tmp",
		"PLUGS_MQTT_PASSWORD=hunter2", "NOTIFY_SOCKET=/run/systemd/notify", "PLUGS_STATE_DIR=/srv/plugs",
		"AWS_SECRET_ACCESS_KEY=k", "TERM=xterm", "SSH_AUTH_SOCK=/tmp/agent", "PYTHONPATH=/daemon/only",
	}
	r, sts := newTestRunner(t, Options{Environ: daemonEnv})
	tree := t.TempDir()
	if err := os.Mkdir(filepath.Join(tree, ".deps"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(tree, "node_modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := fakeSpec("env", "default", "printenv")
	s.Dir = tree
	s.Env["LOG_LEVEL"] = "info"
	s.Env["NODE_PATH"] = "/opt/node"
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	sts.await(t, s.ID, "running", running)
	awaitReady(t, r, s.ID, 1)
	b, err := os.ReadFile(filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(b), "ready\n"), "\n")
	got = slices.DeleteFunc(got, func(kv string) bool { return kv == "" })
	slices.Sort(got)
	want := []string{
		testplugin.Env + "=printenv", "GORACE=atexit_sleep_ms=0",
		"HOME=/home/d", "LANG=C.UTF-8", "LANGUAGE=en", "LC_ALL=C", "LC_TIME=de_DE.UTF-8",
		"LOGNAME=d", "LOG_LEVEL=info",
		"NODE_PATH=/opt/node:" + filepath.Join(tree, "node_modules"),
		"PATH=/usr/bin:/bin",
		"PLUGS_CONFIG=" + filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "config.json"),
		"PLUGS_INSTANCE=default", "PLUGS_PLUG=env", "PLUGS_SETUP_DIR=" + SetupDir(r.opts.StateDir, "env"),
		"PYTHONPATH=" + filepath.Join(tree, ".deps"),
		"SHELL=/bin/bash", "TMPDIR=/var/tmp", "TZ=Europe/Berlin", "USER=d",
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("instance environment (-want +got):\n%s", diff)
	}
}

func TestEnvironmentDefaultPath(t *testing.T) {
	env := passedEnv([]string{"HOME=/root", "NOTIFY_SOCKET=x"})
	if diff := cmp.Diff(map[string]string{"HOME": "/root", "PATH": DefaultPath}, env); diff != "" {
		t.Errorf("passed env (-want +got):\n%s", diff)
	}
	// Without .deps or node_modules, no PYTHONPATH or NODE_PATH appears.
	got := envFor(env, t.TempDir(), map[string]string{"A": "1"}, &account{name: "u", home: "/home/u"}, map[string]string{"PLUGS_PLUG": "p"})
	want := []string{"A=1", "HOME=/home/u", "LOGNAME=u", "PATH=" + DefaultPath, "PLUGS_PLUG=p", "USER=u"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env as another user (-want +got):\n%s", diff)
	}
}

// TestRelativeCommandRunsTheTreesFile: a command word without a slash that
// names a file of the plugin tree runs that file (MobileOps runs
// `cd <plugin dir>; ./<entry_point>`), not a PATH lookup; a word that is
// no file of the tree is looked up in PATH (issue 12).
func TestRelativeCommandRunsTheTreesFile(t *testing.T) {
	r, sts := newTestRunner(t, Options{})
	tree := t.TempDir()
	script := "#!/bin/sh\necho \"main.sh in $(pwd)\"\necho ready\nexec sleep 3600\n"
	if err := os.WriteFile(filepath.Join(tree, "main.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "noexec.py"), []byte("print('x')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := fakeSpec("rel", "default", "sleep")
	s.Dir, s.Command = tree, []string{"main.sh"}
	if err := r.Start(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	sts.await(t, s.ID, "running", running)
	awaitReady(t, r, s.ID, 1)
	b, _ := os.ReadFile(filepath.Join(InstanceDir(r.opts.StateDir, s.ID), "output.log"))
	if !strings.Contains(string(b), "main.sh in "+tree) {
		t.Errorf("output %q: main.sh of the tree did not run in the tree", b)
	}

	noexec := fakeSpec("noexec", "default", "sleep")
	noexec.Dir, noexec.Command = tree, []string{"noexec.py"}
	err := r.Start(t.Context(), noexec)
	if err == nil || !strings.Contains(err.Error(), "not executable (no run bit): chmod +x noexec.py") ||
		!strings.Contains(err.Error(), `["python3", "noexec.py"]`) {
		t.Errorf("a tree file without its run bit: %v", err)
	}

	// "sh" is no file of the tree: PATH.
	viaPath := fakeSpec("path", "default", "sleep")
	viaPath.Dir, viaPath.Command = tree, []string{"sh", "-c", "echo ready; exec sleep 3600"}
	if err := r.Start(t.Context(), viaPath); err != nil {
		t.Fatal(err)
	}
	sts.await(t, viaPath.ID, "running", func(st instance.Status) bool { return running(st) })
}
