// Command pageout asks the kernel to reclaim the pages a running process
// maps from one file (process_madvise MADV_PAGEOUT, as memory pressure
// would), then reports the process's PSS split into anonymous and file
// pages, at once and again after a wait: what the process touches of that
// file while it waits is what it needs of it, the rest was resident only
// since its start.
//
//	go run ./bench/pageout -pid PID -file plugs -wait 10s
//
// It needs CAP_SYS_NICE over the process (root) and Linux 5.10 or later.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	pid := flag.Int("pid", 0, "the process")
	file := flag.String("file", "", "reclaim the mappings whose path contains this")
	wait := flag.Duration("wait", 10*time.Second, "how long to let the process run before the second reading")
	flag.Parse()
	if *pid <= 0 || *file == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*pid, *file, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "pageout:", err)
		os.Exit(1)
	}
}

func run(pid int, file string, wait time.Duration) error {
	report := func(when string) error {
		m, err := rollup(pid)
		if err != nil {
			return err
		}
		fmt.Printf("%-22s Pss %7d kB  Pss_Anon %7d kB  Pss_File %7d kB\n", when, m["Pss:"], m["Pss_Anon:"], m["Pss_File:"])
		return nil
	}
	if err := report("before"); err != nil {
		return err
	}
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(pfd)
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return err
	}
	defer maps.Close()
	sc := bufio.NewScanner(maps)
	n := 0
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || !strings.Contains(fs[5], file) {
			continue
		}
		var lo, hi uint64
		if _, err := fmt.Sscanf(fs[0], "%x-%x", &lo, &hi); err != nil {
			return fmt.Errorf("maps line %q: %w", sc.Text(), err)
		}
		// The iovec names addresses in the other process, never
		// dereferenced here: the address is stored as the integer it is.
		var iov unix.Iovec
		*(*uintptr)(unsafe.Pointer(&iov.Base)) = uintptr(lo)
		iov.SetLen(int(hi - lo))
		if _, _, e := unix.Syscall6(unix.SYS_PROCESS_MADVISE, uintptr(pfd), uintptr(unsafe.Pointer(&iov)), 1, unix.MADV_PAGEOUT, 0, 0); e != 0 {
			return fmt.Errorf("process_madvise %s: %w", fs[0], e)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no mapping of %q in process %d", file, pid)
	}
	if err := report("after pageout"); err != nil {
		return err
	}
	time.Sleep(wait)
	return report("after " + wait.String())
}

// rollup reads /proc/PID/smaps_rollup's kB figures by field name.
func rollup(pid int) (map[string]int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return nil, err
	}
	m := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) == 3 && fs[2] == "kB" {
			v, _ := strconv.Atoi(fs[1])
			m[fs[0]] = v
		}
	}
	return m, nil
}
