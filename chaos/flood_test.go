package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/plugs-dev/plugs/runner"
)

// TestOutputFlood runs a plugin that writes its output as fast as it can:
// output.log and its backups stay under the runner's cap the whole time,
// and the daemon's memory stays flat.
func TestOutputFlood(t *testing.T) {
	dir := t.TempDir()
	id := runID(t)
	t.Cleanup(func() { killMarked(id) })
	writeFiles(t, dir, map[string]string{
		"plugs.hcl": fmt.Sprintf(`plug "flood" {
  source       = "./plugins/flood"
  env          = { CHAOS_RUN = %q }
  stop_timeout = "2s"
}
`, id),
		"plugins/flood/plugin.hcl": fmt.Sprintf(`plugin "flood" {
  version = "1.0.0"
  kind    = "script"
  command = ["sh", "./flood.sh", %q]
}
`, id),
		// yes writes 8 KiB blocks of the line, as fast as the pipe takes them.
		"plugins/flood/flood.sh": "exec yes 'chaos flood: the quick brown fox jumps over the lazy dog'\n",
	})
	const logCap = runner.DefaultLogMaxSize * (runner.DefaultLogBackups + 1)
	logDir := filepath.Join(dir, ".plugs", "instances", "flood", "default")

	d := startDaemon(t, dir)
	d.waitReady()
	d.waitInstances("the flood running", allRunning([]string{"flood/default"}))

	// Memory is compared from a warm start: the first second fills the
	// runner's buffers and the log file's page cache.
	time.Sleep(time.Second)
	rss0, err := procStatusKB(d.pid(), "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	maxDisk, maxFiles, samples := int64(0), 0, 0
	rssMax := rss0
	end := time.Now().Add(size.Flood)
	for time.Now().Before(end) {
		disk, n := logUsage(logDir)
		maxDisk, maxFiles = max(maxDisk, disk), max(maxFiles, n)
		if rss, err := procStatusKB(d.pid(), "VmRSS"); err == nil {
			rssMax = max(rssMax, rss)
		}
		samples++
		time.Sleep(100 * time.Millisecond)
	}
	rss1, err := procStatusKB(d.pid(), "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	if st := byID(d.status())["flood/default"]; st.State != "running" || st.Restarts != 0 {
		t.Errorf("the flooding instance is %s after %d restarts, want running, never restarted", st.State, st.Restarts)
	}

	if maxDisk > logCap {
		t.Errorf("output.log and backups used %d bytes, over the cap of %d", maxDisk, logCap)
	}
	if maxFiles > runner.DefaultLogBackups+1 {
		t.Errorf("%d output.log files, want at most %d", maxFiles, runner.DefaultLogBackups+1)
	}
	if _, err := os.Stat(filepath.Join(logDir, fmt.Sprintf("output.log.%d", runner.DefaultLogBackups))); err != nil {
		t.Errorf("the flood never filled every backup, so the cap was not tested: %v", err)
	}
	const slackKB = 16 << 10
	if rss1 > rss0+slackKB {
		t.Errorf("daemon RSS grew from %d kB to %d kB during the flood (slack %d kB)", rss0, rss1, slackKB)
	}
	figure(t, "output-flood", "%s of flood: output.log+backups at most %.1f MiB in %d files (cap %d MiB, %d samples); daemon RSS %d kB → %d kB (max %d kB)",
		size.Flood, float64(maxDisk)/(1<<20), maxFiles, logCap>>20, samples, rss0, rss1, rssMax)
	d.stop()
}

// logUsage is the bytes and count of output.log and its backups.
func logUsage(dir string) (int64, int) {
	names, _ := filepath.Glob(filepath.Join(dir, "output.log*"))
	var total int64
	for _, n := range names {
		if fi, err := os.Stat(n); err == nil {
			total += fi.Size()
		}
	}
	return total, len(names)
}
