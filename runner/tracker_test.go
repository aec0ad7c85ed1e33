package runner

import (
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestTrackerGathersABurst: requests that come one by one, each soon after
// the last walk (a stop of many instances), are served by fewer walks than
// requests; a request after a quiet while is walked for at once, without
// waiting for others.
func TestTrackerGathersABurst(t *testing.T) {
	burst, gather := trackerBurst, trackerGather
	trackerBurst, trackerGather = 50*time.Millisecond, 5*time.Millisecond
	t.Cleanup(func() { trackerBurst, trackerGather = burst, gather })
	var pt ProcTracker
	var wg sync.WaitGroup
	const requests = 40
	for i := range requests {
		wg.Go(func() {
			if n, err := pt.Signal(Target{Env: "PLUGS_CONFIG=/nonexistent/" + strconv.Itoa(i)}, syscall.SIGTERM); n != 0 || err != nil {
				t.Errorf("a target with no process: %d signalled, %v", n, err)
			}
		})
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	pt.mu.Lock()
	walks, gathers := pt.walks, pt.gathers
	pt.mu.Unlock()
	if walks > requests/2 {
		t.Errorf("%d requests one by one in a burst took %d walks, want them gathered", requests, walks)
	}
	time.Sleep(2 * trackerBurst)
	if _, err := pt.Signal(Target{Env: "PLUGS_CONFIG=/nonexistent/quiet"}, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.walks != walks+1 || pt.gathers != gathers {
		t.Errorf("a request after a quiet while: walks %d → %d, gathered %d → %d; want one walk, at once", walks, pt.walks, gathers, pt.gathers)
	}
}
