package runner

import (
	"sync"
	"time"
)

// housekeepQuiet is how long no start may have asked for housekeeping
// before it runs: a burst of starts (a cold start of 1,000) ends first.
const housekeepQuiet = 250 * time.Millisecond

// housekeeper runs the file work a start does not need, once the starts
// have paused: the twin of instance.json that its next write swaps in
// (writeSwapped), and the empty output.log of an instance that has printed
// nothing yet (rotatingFile.Touch), and the deletion of a removed
// instance's folder (Runner.discard). On this kind of VM each file created
// costs 150–400 µs of CPU, and the first start of 1,000 instances created
// seven per instance; those two wait. Each job must be safe to skip
// (a write makes a missing twin itself, the first output makes the log,
// the next runner deletes what removed/ holds) and to run late (on an instance stopped or removed since). Its goroutine
// runs only while jobs wait. The zero value is ready to use.
type housekeeper struct {
	mu      sync.Mutex
	jobs    []func()
	last    time.Time // when the last job came
	running bool
	closed  bool
	wake    chan struct{} // closed by close: the wait ends at once
	done    sync.WaitGroup
}

// add queues f to run after the starts pause. After close, f runs now.
func (h *housekeeper) add(f func()) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		f()
		return
	}
	h.jobs = append(h.jobs, f)
	h.last = time.Now()
	if h.wake == nil {
		h.wake = make(chan struct{})
	}
	if !h.running {
		h.running = true
		h.done.Add(1)
		go h.loop()
	}
	h.mu.Unlock()
}

func (h *housekeeper) loop() {
	defer h.done.Done()
	for {
		h.mu.Lock()
		if len(h.jobs) == 0 {
			h.running = false
			h.mu.Unlock()
			return
		}
		wait := housekeepQuiet - time.Since(h.last)
		if h.closed {
			wait = 0
		}
		if wait > 0 {
			wake := h.wake
			h.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-wake:
				t.Stop()
			}
			continue
		}
		jobs := h.jobs
		h.jobs = nil
		h.mu.Unlock()
		for _, f := range jobs {
			f()
		}
	}
}

// close runs what waits at once and returns when it is done; later jobs
// run in add.
func (h *housekeeper) close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		if h.wake != nil {
			close(h.wake)
		}
	}
	h.mu.Unlock()
	h.done.Wait()
}
