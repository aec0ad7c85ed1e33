package runner

// maxAncestors bounds IsDescendant's walk up the process tree.
const maxAncestors = 256

// IsDescendant reports whether the process pid descends from ancestor (a
// child, a grandchild...). A process that ancestor adopted as a child
// subreaper (an orphan of a plugin) is one too. ancestor itself is not its
// own descendant; a pid that is gone or in another pid namespace is no one's.
func IsDescendant(pid, ancestor int) bool {
	for range maxAncestors {
		if pid <= 1 || pid == ancestor {
			return false
		}
		st, err := readProcStat(pid)
		if err != nil {
			return false
		}
		if st.PPID == ancestor {
			return true
		}
		pid = st.PPID
	}
	return false
}
