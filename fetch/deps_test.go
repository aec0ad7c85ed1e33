package fetch

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// writeWheel writes a minimal pure-Python wheel of package name (one
// module, VALUE = value) into dir, as pip wheel would.
func writeWheel(t *testing.T, dir, name, version, value string) {
	t.Helper()
	writeWheelOf(t, dir, name, name, version, "VALUE = "+value+"\n")
}

// writeWheelOf writes a wheel of distribution name holding module with
// the source init.
func writeWheelOf(t *testing.T, dir, name, module, version, init string) {
	t.Helper()
	files := map[string]string{
		module + "/__init__.py":                      init,
		name + "-" + version + ".dist-info/METADATA": "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n",
		name + "-" + version + ".dist-info/WHEEL":    "Wheel-Version: 1.0\nGenerator: plugs-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
	}
	record := name + "-" + version + ".dist-info/RECORD"
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var rec strings.Builder
	for _, n := range []string{module + "/__init__.py", name + "-" + version + ".dist-info/METADATA", name + "-" + version + ".dist-info/WHEEL"} {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(files[n]))
		sum := sha256.Sum256([]byte(files[n]))
		fmt.Fprintf(&rec, "%s,sha256=%s,%d\n", n, base64.RawURLEncoding.EncodeToString(sum[:]), len(files[n]))
	}
	fmt.Fprintf(&rec, "%s,,\n", record)
	w, _ := zw.Create(record)
	w.Write([]byte(rec.String()))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-"+version+"-py3-none-any.whl"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// offline runs argv with env under `unshare -n` (no network at all).
func offline(t *testing.T, dir string, env []string, argv ...string) string {
	t.Helper()
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		if err := exec.Command("unshare", "-rn", "true").Run(); err != nil {
			t.Skipf("unshare -n does not work here (%v): cannot prove the offline start", err)
		}
		argv = append([]string{"unshare", "-rn"}, argv...)
	} else {
		argv = append([]string{"unshare", "-n"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", argv, err, out)
	}
	return string(out)
}

// TestPythonDepsInstalledAtBuild: a MobileOps plugin with requirements.txt
// and "dependencies" gets them installed by plugs build into <tree>/.deps
// from the user's index (here a local wheel folder through pip's own
// PIP_FIND_LINKS), the bundle carries them, and the unbundled plugin
// imports them with PYTHONPATH=<tree>/.deps on a host without network.
func TestPythonDepsInstalledAtBuild(t *testing.T) {
	if err := exec.Command("python3", "-m", "pip", "--version").Run(); err != nil {
		t.Skip("python3 -m pip is not installed (scripts/test-deps.sh installs python3-pip):", err)
	}
	wheels := t.TempDir()
	writeWheel(t, wheels, "tinydep", "0.1", "42")
	writeWheel(t, wheels, "otherdep", "1.0", "7")
	t.Setenv("PIP_CONFIG_FILE", os.DevNull)
	t.Setenv("PIP_NO_INDEX", "1")
	t.Setenv("PIP_FIND_LINKS", wheels)

	d := deployment(t, plugOf("w", "./w", ""))
	writeFiles(t, filepath.Join(d.BaseDir, "w"), map[string]string{
		"plugin.json":      `{"name": "w", "version": "1.0.0", "entry_point": "main.py", "dependencies": ["otherdep>=1.0"]}`,
		"requirements.txt": "tinydep==0.1\n",
		"main.py":          "import tinydep, otherdep\nprint('deps', tinydep.VALUE, otherdep.VALUE)\n",
	})
	s := newStore(t)
	l := mustLock(t, s, d, nil)
	if trees := mustFetch(t, s, d, l, false); trees[0].Built {
		t.Fatal("a tree with dependencies is runnable before plugs build")
	}
	if _, err := s.Runnable(d, l); err == nil || !strings.Contains(err.Error(), "not built") {
		t.Fatalf("runnable before build: %v", err)
	}
	trees, err := s.Build(context.Background(), d, l)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{".deps/tinydep/__init__.py", ".deps/otherdep/__init__.py"} {
		if _, err := os.Stat(filepath.Join(trees[0].Dir, f)); err != nil {
			t.Fatalf("%s not installed: %v", f, err)
		}
	}
	if _, err := s.Runnable(d, l); err != nil {
		t.Fatalf("runnable after build: %v", err)
	}

	bundle := filepath.Join(t.TempDir(), "b.tar.gz")
	if err := s.WriteBundle(context.Background(), bundle, d, l); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "host")
	if _, err := Unbundle(context.Background(), bundle, state); err != nil {
		t.Fatal(err)
	}
	host := Open(state, Options{Offline: true})
	run, err := host.Runnable(d, l)
	if err != nil {
		t.Fatal(err)
	}
	dir := run["w"].Dir
	out := offline(t, dir, []string{"PYTHONPATH=" + filepath.Join(dir, PythonDepsDir)}, "python3", "main.py")
	if strings.TrimSpace(out) != "deps 42 7" {
		t.Fatalf("offline run printed %q", out)
	}
}

// TestNpmDepsInstalledAtBuild: a plugin with a package.json gets its
// dependencies installed by plugs build (npm install --omit=dev without a
// lock file) from the registry npm is configured with, and the unbundled
// plugin requires them on a host without network.
func TestNpmDepsInstalledAtBuild(t *testing.T) {
	if _, err := exec.LookPath("npm"); err != nil {
		t.Skip("npm is not installed (scripts/test-deps.sh installs it):", err)
	}
	d := deployment(t, plugOf("n", "./n", ""))
	writeFiles(t, filepath.Join(d.BaseDir, "n"), map[string]string{
		"plugin.hcl":   `plugin "n" { command = ["node", "index.js"] }`,
		"package.json": `{"name": "n", "version": "1.0.0", "private": true, "dependencies": {"ms": "2.1.3"}, "devDependencies": {"left-pad": "1.3.0"}}`,
		"index.js":     "const ms = require('ms'); console.log('ms', ms('2h'));\n",
	})
	s := newStore(t)
	l := mustLock(t, s, d, nil)
	trees, err := s.Build(context.Background(), d, l)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(trees[0].Dir, "node_modules", "ms", "package.json")); err != nil {
		t.Fatalf("ms not installed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(trees[0].Dir, "node_modules", "left-pad")); err == nil {
		t.Error("a devDependency was installed")
	}
	bundle := filepath.Join(t.TempDir(), "b.tar.gz")
	if err := s.WriteBundle(context.Background(), bundle, d, l); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "host")
	if _, err := Unbundle(context.Background(), bundle, state); err != nil {
		t.Fatal(err)
	}
	run, err := Open(state, Options{Offline: true}).Runnable(d, l)
	if err != nil {
		t.Fatal(err)
	}
	if out := offline(t, run["n"].Dir, nil, "node", "index.js"); strings.TrimSpace(out) != "ms 7200000" {
		t.Fatalf("offline run printed %q", out)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPython3Version(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	v, err := Python3Version()
	if err != nil || !strings.HasPrefix(v, "3.") {
		t.Fatalf("Python3Version() = %q, %v", v, err)
	}
}

// firstLineOffline starts argv under unshare -n (no network), returns the
// first line it prints, and kills it.
func firstLineOffline(t *testing.T, dir string, env []string, argv ...string) string {
	t.Helper()
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("unshare -n does not work here (%v): cannot prove the offline start", err)
	}
	cmd := exec.Command("unshare", append([]string{"-n"}, argv...)...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, rerr := bufio.NewReader(out).ReadString('\n')
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
	if rerr != nil {
		t.Fatalf("%q printed nothing: %v\n%s", argv, rerr, stderr.String())
	}
	return strings.TrimSpace(line)
}

// TestSeedPluginsBuildBundleRunOffline: the MobileOps plugin as its plugin
// manager writes it (entry_point main.py, requirements.txt and
// "dependencies" on pyserial, from a local wheel folder here) and the
// mHealth plugin (configParams names) are locked, built, bundled, unpacked
// on a "host" and started there without network, with the command their
// manifests give.
func TestSeedPluginsBuildBundleRunOffline(t *testing.T) {
	if err := exec.Command("python3", "-m", "pip", "--version").Run(); err != nil {
		t.Skip("python3 -m pip is not installed (scripts/test-deps.sh installs python3-pip):", err)
	}
	wheels := t.TempDir()
	writeWheelOf(t, wheels, "pyserial", "serial", "3.5", "VERSION = '3.5'\n")
	t.Setenv("PIP_CONFIG_FILE", os.DevNull)
	t.Setenv("PIP_NO_INDEX", "1")
	t.Setenv("PIP_FIND_LINKS", wheels)

	d := deployment(t, plugOf("weather", "./weather", ""), plugOf("spo2", "./spo2", ""))
	for plug, seed := range map[string]string{"weather": "mobileops-weather", "spo2": "mhealth-spo2"} {
		if err := copyTree(filepath.Join("..", "spec", "testdata", "seeds", seed), filepath.Join(d.BaseDir, plug)); err != nil {
			t.Fatal(err)
		}
	}
	s := newStore(t)
	l := mustLock(t, s, d, nil)
	if _, err := s.Build(context.Background(), d, l); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "seeds.tar.gz")
	if err := s.WriteBundle(context.Background(), bundle, d, l); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "host")
	if _, err := Unbundle(context.Background(), bundle, state); err != nil {
		t.Fatal(err)
	}
	trees, err := Open(state, Options{Offline: true}).Runnable(d, l)
	if err != nil {
		t.Fatal(err)
	}
	for plug, want := range map[string]string{"weather": "reading /dev/ttyUSB0 pyserial 3.5", "spo2": "spo2 device A1:B2"} {
		tree := trees[plug]
		config := filepath.Join(t.TempDir(), "config.json")
		params := `{"port": "/dev/ttyUSB0", "interval": 30}`
		if plug == "spo2" {
			params = `{"device_id": "A1:B2", "token": "t"}`
		}
		if err := os.WriteFile(config, []byte(`{"params": `+params+`}`), 0o600); err != nil {
			t.Fatal(err)
		}
		env := []string{"PLUGS_CONFIG=" + config, "PYTHONPATH=" + filepath.Join(tree.Dir, PythonDepsDir)}
		if got := firstLineOffline(t, tree.Dir, env, tree.Manifest.Command...); got != want {
			t.Errorf("%s (%q) printed %q, want %q", plug, tree.Manifest.Command, got, want)
		}
	}
}
