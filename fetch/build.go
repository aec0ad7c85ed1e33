package fetch

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/plugs-dev/plugs/spec"
)

// buildTailLines is how much of a failed build's output its error shows.
const buildTailLines = 20

// Build fetches like Fetch (without Frozen: the caller writes the lock) and
// runs the manifest's build command of every plug that has one and is not
// built yet (with that command), then installs the tree's dependencies
// (requirements.txt and MobileOps dependencies with pip into .deps,
// package.json with npm into node_modules; see installDeps). A build runs in a copy of the fetched
// tree, its output captured to <tree>.build.log; only a successful build
// installs its tree, which is then read-only and never built again. The
// built tree replaces the fetched one, except for an inline plugin {} block
// with a build: its built tree is kept apart, per build command (builtKey).
func (s *Store) Build(ctx context.Context, d *spec.Deployment, l *spec.Lock) ([]*Tree, error) {
	trees, err := s.Fetch(ctx, d, l, FetchOptions{})
	if err != nil {
		return nil, err
	}
	plugs := enabledPlugs(d) // in the order of trees
	var todo []int
	for i, t := range trees {
		if !t.Built {
			todo = append(todo, i)
		}
	}
	bar := s.progress("build", len(todo))
	var errs []error
	for _, i := range todo {
		t := trees[i]
		if err := s.build(ctx, plugs[i], t); err != nil {
			errs = append(errs, plugError(t.Plug, err))
			continue
		}
		t.Built = true
		bar.step(t.Plug + " " + short(t.Revision))
	}
	bar.finish()
	if err := s.Sync(); err != nil {
		errs = append(errs, err)
	}
	if err := joinErrors(errs); err != nil {
		return nil, err
	}
	return trees, nil
}

// build builds plug p's fetched tree t and points t at the result.
func (s *Store) build(ctx context.Context, p *spec.Plug, t *Tree) error {
	defer s.lockKey("tree:" + t.Plug + "@" + t.Revision)()
	m, err := s.readMarker(t.Plug, t.Revision)
	if err != nil {
		return err
	}
	argv := t.Manifest.Build
	key := builtKey(p, t.Revision)
	switch {
	case key == "" && m.Built:
		return nil
	case key == "":
		key = t.Revision
	case m.Built:
		// An earlier plugs built inline builds in place: the source is gone.
		return inputErrorf("tree %s was built in place by an earlier plugs; remove it and its %s.done.json, then run plugs build",
			s.treeDir(t.Plug, t.Revision), t.Revision)
	}
	src := s.treeDir(t.Plug, t.Revision)
	tmp := tempName(s.plugDir(t.Plug), ".build-")
	if err := copyTree(src, tmp); err != nil {
		_ = removeTree(tmp)
		return fmt.Errorf("copy tree for build: %w", err)
	}
	logPath := filepath.Join(s.plugDir(t.Plug), key+".build.log")
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		_ = removeTree(tmp)
		return err
	}
	if len(argv) > 0 {
		if err := s.runBuild(ctx, t, tmp, argv, logPath); err != nil {
			_ = removeTree(tmp)
			return err
		}
	}
	if d := depsOf(tmp, t.Manifest); d.any() {
		if err := s.installDeps(ctx, t, tmp, d, logPath); err != nil {
			_ = removeTree(tmp)
			return err
		}
	}
	h, err := hashDir(tmp)
	if err != nil {
		_ = removeTree(tmp)
		return err
	}
	built := *m
	built.Built, built.BuiltHash, built.BuildCommand = true, h, slices.Clone(argv)
	if err := s.install(t.Plug, key, tmp, &built); err != nil {
		_ = removeTree(tmp)
		return err
	}
	t.Dir = s.treeDir(t.Plug, key)
	s.log.Info("built", "plug", t.Plug, "version", t.Version, "revision", t.Revision, "tree", key)
	return nil
}

func (s *Store) runBuild(ctx context.Context, t *Tree, dir string, argv []string, logPath string) error {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	name := argv[0]
	if strings.Contains(name, "/") && !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	cmd := exec.CommandContext(ctx, name, argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PLUGS_PLUG="+t.Plug, "PLUGS_REVISION="+t.Revision, "PLUGS_VERSION="+t.Version)
	cmd.Stdout, cmd.Stderr = logf, logf
	runErr := cmd.Run()
	if runErr == nil {
		return nil
	}
	return &inputError{fmt.Errorf("build %q at %s failed: %v; output (%s):\n%s",
		strings.Join(argv, " "), describeTree(t), runErr, logPath, tail(logPath, buildTailLines))}
}

func describeTree(t *Tree) string {
	return describe(&spec.LockedPlug{Version: t.Version, Revision: t.Revision})
}

// tail returns the last n lines of a file.
func tail(p string, n int) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
