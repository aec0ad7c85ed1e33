package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/plugs-dev/plugs/instance"
)

// Environment rules. An instance does not inherit the daemon's environment,
// as a systemd service does not inherit systemd's: the daemon's may hold
// secrets (PLUGS_MQTT_PASSWORD from an EnvironmentFile) and variables meant
// for the daemon alone (NOTIFY_SOCKET, PLUGS_STATE_DIR). An instance's
// environment is, in increasing precedence:
//
//  1. the daemon's PassedEnv variables and LC_* (PATH gets DefaultPath
//     when the daemon has none; HOME, USER and LOGNAME are the target
//     user's when the instance runs as another user);
//  2. PYTHONPATH=<dir>/.deps when the plugin tree has a .deps folder, and
//     NODE_PATH=<dir>/node_modules when it has node_modules (dependencies
//     installed at build time); a PYTHONPATH or NODE_PATH the plug declares
//     comes first, the tree's folder after it;
//  3. the plug's env;
//  4. PLUGS_CONFIG, PLUGS_PLUG, PLUGS_INSTANCE and PLUGS_SETUP_DIR (the
//     plug's setup folder, see SetupDir), which nothing overrides.

// PassedEnv lists the variables of the daemon's environment that every
// instance receives, with every LC_* variable.
var PassedEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR"}

// DefaultPath is an instance's PATH when the daemon has none (systemd's).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Folders of a plugin tree that hold dependencies installed at build time.
const (
	PythonDepsDir = ".deps"
	NodeDepsDir   = "node_modules"
)

// passedEnv picks the variables an instance inherits from environ
// ("KEY=value" strings, as os.Environ returns them).
func passedEnv(environ []string) map[string]string {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if slices.Contains(PassedEnv, k) || strings.HasPrefix(k, "LC_") {
			env[k] = v
		}
	}
	if env["PATH"] == "" {
		env["PATH"] = DefaultPath
	}
	return env
}

// envFor is the environment of a process of an instance (see the rules
// above). base is passedEnv's result; who, when not nil, is the user the
// process runs as; vars are the PLUGS_* variables the runner sets.
func envFor(base map[string]string, dir string, declared map[string]string, who *account, vars map[string]string) []string {
	env := maps.Clone(base)
	if who != nil {
		env["HOME"], env["USER"], env["LOGNAME"] = who.home, who.name, who.name
		delete(env, "SHELL")
	}
	maps.Copy(env, declared)
	for key, sub := range map[string]string{"PYTHONPATH": PythonDepsDir, "NODE_PATH": NodeDepsDir} {
		p := filepath.Join(dir, sub)
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			continue
		}
		if v := declared[key]; v != "" {
			p = v + string(os.PathListSeparator) + p
		}
		env[key] = p
	}
	maps.Copy(env, vars)
	envv := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		envv = append(envv, k+"="+env[k])
	}
	return envv
}

// account is the user a process runs as, for its environment.
type account struct {
	name, home string
}

// resolveCommand finds the executable of argv[0] for a process that runs
// in dir, with the PATH of its environment:
//
//   - a word with a slash is a path, relative to dir unless absolute;
//   - a word that names a file of dir runs that file, as MobileOps runs
//     `cd <plugin dir>; ./<entry_point>`; a file without its run bit is an
//     error that says so, rather than a PATH lookup of the same name;
//   - any other word is looked up in PATH.
func resolveCommand(dir, name, path string) (string, error) {
	if name == "" {
		return "", errors.New("empty command")
	}
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		return p, checkExecutable(p, name)
	}
	local := filepath.Join(dir, name)
	if fi, err := os.Stat(local); err == nil && fi.Mode().IsRegular() {
		return local, checkExecutable(local, name)
	}
	return lookPath(name, path)
}

func checkExecutable(p, name string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("executable: %w", err)
	}
	if fi.IsDir() {
		return fmt.Errorf("executable %s: is a directory", p)
	}
	if fi.Mode()&0o111 == 0 {
		return fmt.Errorf("executable %s: not executable (no run bit): chmod +x %s in the plugin, or name its interpreter first (e.g. [\"python3\", %q])", p, name, name)
	}
	return nil
}

// errNotFound is lookPath's error; it wraps fs.ErrNotExist.
var errNotFound = fmt.Errorf("executable file not found in the plugin tree or in $PATH: %w", fs.ErrNotExist)

// lookPath is exec.LookPath over the instance's PATH rather than the
// daemon's.
func lookPath(name, path string) (string, error) {
	for _, d := range filepath.SplitList(path) {
		if d == "" || !filepath.IsAbs(d) {
			continue // "" and relative entries would resolve against the plugin tree
		}
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable %q: %w", name, errNotFound)
}

// environ is the environment of a process of the instance of spec.
func (r *Runner) environ(spec instance.Spec, who *account) []string {
	vars := map[string]string{
		"PLUGS_CONFIG":    filepath.Join(InstanceDir(r.opts.StateDir, spec.ID), "config.json"),
		"PLUGS_PLUG":      spec.ID.Plug,
		"PLUGS_INSTANCE":  spec.ID.Instance,
		"PLUGS_SETUP_DIR": SetupDir(r.opts.StateDir, spec.ID.Plug),
	}
	return envFor(r.baseEnv, spec.Dir, spec.Env, who, vars)
}

// envValue returns the value of key in envv.
func envValue(envv []string, key string) string {
	for _, kv := range envv {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}
