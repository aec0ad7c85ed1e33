package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// A plugin that runs as its own user cannot use the PATH entries of a
// daemon whose PATH starts in a private home (pyenv's shims in /root,
// cargo's bin): the lookup would find /root/.pyenv/shims/python3 and the
// exec fail with "permission denied", although /usr/bin/python3 is there.
// So a switched user's PATH keeps only the folders that user can search,
// and a bare command word the runner found in a dropped folder is looked
// up again in what is left.

// userPath returns path without the entries uid (with gid and groups)
// cannot search.
func userPath(path string, uid, gid uint32, groups []uint32) string {
	var keep []string
	for _, dir := range filepath.SplitList(path) {
		if dir != "" && filepath.IsAbs(dir) && searchable(dir, uid, gid, groups) {
			keep = append(keep, dir)
		}
	}
	return strings.Join(keep, string(filepath.ListSeparator))
}

// searchable reports whether every folder from / down to dir lets uid
// search it (the x bit of the class uid falls in).
func searchable(dir string, uid, gid uint32, groups []uint32) bool {
	dir = filepath.Clean(dir)
	for d := dir; ; d = filepath.Dir(d) {
		if !permits(d, uid, gid, groups, 0o1) {
			return false
		}
		if d == "/" {
			return true
		}
	}
}

// permits reports whether uid may use file with the permission bit bit
// (1 execute/search, 2 write, 4 read) of its class; root may always.
func permits(file string, uid, gid uint32, groups []uint32, bit uint32) bool {
	if uid == 0 {
		return true
	}
	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil {
		return false
	}
	mode := st.Mode & 0o777
	switch {
	case st.Uid == uid:
		return mode&(bit<<6) != 0
	case st.Gid == gid || slices.Contains(groups, st.Gid):
		return mode&(bit<<3) != 0
	default:
		return mode&bit != 0
	}
}

// lookUserPath finds name in path for uid: the first regular file that
// uid may execute.
func lookUserPath(name, path string, uid, gid uint32, groups []uint32) (string, bool) {
	for _, dir := range filepath.SplitList(path) {
		file := filepath.Join(dir, name)
		if fi, err := os.Stat(file); err == nil && fi.Mode().IsRegular() && permits(file, uid, gid, groups, 0o1) {
			return file, true
		}
	}
	return "", false
}

// envPath returns the PATH of env ("KEY=value" strings).
func envPath(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return v
		}
	}
	return ""
}

// withPath returns env with PATH set to path.
func withPath(env []string, path string) []string {
	out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "PATH=") })
	return append(out, "PATH="+path)
}
