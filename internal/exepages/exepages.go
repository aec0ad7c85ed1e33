// Package exepages gives back the pages of this process's own executable
// that its start-up mapped and it no longer uses (issue 17).
//
// A Go binary's package initialisers are spread over its whole text (each
// of the ~540 packages plugs links runs its init from its own part of it)
// and the kernel maps a touched file page's neighbours with it (fault-around,
// 64 KiB, or the whole large folio the page cache holds it in: up to 2 MiB
// on Linux 6.18 for a binary written by go build or cp). So once the daemon
// has started, 21–23 MiB of its 25 MiB of text, read-only data and pclntab
// are mapped and counted in its RSS and PSS, although the idle daemon
// touches 10 KiB of them again (bench/pageout).
//
// Release calls madvise(MADV_PAGEOUT) on the executable's private, read-only
// file mappings that hold no anonymous page: it unmaps those pages and has
// the kernel reclaim the ones no other process maps, which is what memory
// pressure would do to them anyway (they are clean copies of the file). A
// page needed again costs a page fault and, if it was reclaimed, a read of
// the file (with the device's read-ahead: a reload's first parse after a
// release reads the parser's code back from disk or, usually, from the
// disk's cache). Mapping them again with MADV_DONTNEED alone would not do:
// the pages stay in the page cache as the large folios they were, and the
// idle daemon's few touches map whole folios back (~13 MiB at N = 1,000).
// A freshly written binary's pages are dirty until the kernel writes them
// back, and reclaim skips dirty pages, so Release first writes the file's
// pages back (fdatasync: nothing to do for an installed binary).
//
// Mappings that can hold data are never touched: writable ones (.data,
// .bss, the heap) and read-only ones with an anonymous page (the dynamic
// linker's RELRO, the GOT after relocation).
package exepages

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Mapping is one mapping of /proc/self/smaps that Release may unmap.
type Mapping struct {
	Lo, Hi uint64 // addresses
	Rss    int64  // bytes resident before the release
}

// Resident is how many bytes of the mappings Release would release are
// resident in this process now.
func Resident() (int64, error) {
	ms, err := mappings()
	var n int64
	for _, m := range ms {
		n += m.Rss
	}
	return n, err
}

// Release gives back the executable's read-only pages as the package
// comment says, and returns the mappings it released.
func Release() ([]Mapping, error) {
	ms, err := mappings()
	if err != nil {
		return nil, err
	}
	if bin, err := os.Open("/proc/self/exe"); err == nil {
		_ = unix.Fdatasync(int(bin.Fd())) // best effort: what stays dirty stays mapped
		bin.Close()
	}
	for _, m := range ms {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(m.Lo), uintptr(m.Hi-m.Lo), unix.MADV_PAGEOUT); e != 0 {
			return nil, fmt.Errorf("madvise %x-%x: %w", m.Lo, m.Hi, e)
		}
	}
	return ms, nil
}

// mappings are the executable's releasable mappings (see releasable).
func mappings() ([]Mapping, error) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/exe", &st); err != nil {
		return nil, fmt.Errorf("stat /proc/self/exe: %w", err)
	}
	path, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return releasable(f, exe{dev: uint64(st.Dev), ino: st.Ino, path: path})
}

// exe names the executable as smaps may show it: by device and inode, or
// by path (on overlayfs, smaps shows the inode of the layer's file while
// stat of /proc/self/exe shows the overlay's).
type exe struct {
	dev, ino uint64
	path     string
}

// releasable reads smaps and returns the mappings of the executable that
// are private, not writable, resident and free of anonymous pages.
func releasable(smaps io.Reader, x exe) ([]Mapping, error) {
	var out []Mapping
	var cur *Mapping
	var anon int64
	keep := func() {
		if cur != nil && anon == 0 && cur.Rss > 0 {
			out = append(out, *cur)
		}
		cur, anon = nil, 0
	}
	dev := fmt.Sprintf("%02x:%02x", unix.Major(x.dev), unix.Minor(x.dev))
	sc := bufio.NewScanner(smaps)
	for sc.Scan() {
		line := sc.Text()
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		if !strings.HasSuffix(fs[0], ":") { // a mapping's header: addresses perms offset dev inode [path]
			keep()
			if len(fs) < 5 {
				continue
			}
			perms := fs[1]
			if len(perms) != 4 || perms[1] == 'w' || perms[3] != 'p' || perms[0] != 'r' {
				continue
			}
			ino, err := strconv.ParseUint(fs[4], 10, 64)
			if err != nil || ino == 0 { // ino 0: anonymous
				continue
			}
			if (ino != x.ino || fs[3] != dev) && (len(fs) < 6 || strings.Join(fs[5:], " ") != x.path) {
				continue
			}
			lo, hi, ok := strings.Cut(fs[0], "-")
			if !ok {
				return nil, fmt.Errorf("smaps: bad mapping line %q", line)
			}
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil || h <= l {
				return nil, fmt.Errorf("smaps: bad mapping line %q", line)
			}
			cur = &Mapping{Lo: l, Hi: h}
			continue
		}
		if cur == nil || len(fs) < 2 {
			continue
		}
		switch fs[0] {
		case "Rss:", "Anonymous:":
			kb, err := strconv.ParseInt(fs[1], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("smaps: bad line %q", line)
			}
			if fs[0] == "Rss:" {
				cur.Rss = kb << 10
			} else {
				anon = kb
			}
		}
	}
	keep()
	return out, sc.Err()
}
