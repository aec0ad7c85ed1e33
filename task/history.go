package task

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/plugs-dev/plugs/internal/layout"
)

// history keeps the last runs of one plug, newest last, and mirrors them to
// <stateDir>/tasks/<plug>/runs.json (atomically replaced after each run).
type history struct {
	path string // "" keeps it in memory

	mu          sync.Mutex
	limit       int
	runs        []Result
	lastSuccess time.Time
}

type historyFile struct {
	LastSuccess time.Time `json:"last_success,omitzero"`
	Runs        []Result  `json:"runs"`
}

func historyPath(stateDir, plug string) string {
	if stateDir == "" {
		return ""
	}
	return layout.TaskHistory(stateDir, plug)
}

// loadHistory reads a plug's history; a missing or unreadable file starts an
// empty one (the error says why, for a warning).
func loadHistory(path string, limit int) (*history, error) {
	h := &history{path: path, limit: limit}
	if path == "" {
		return h, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return h, err
	}
	var f historyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return h, err
	}
	h.runs, h.lastSuccess = f.Runs, f.LastSuccess
	h.trimLocked()
	return h, nil
}

func (h *history) setLimit(n int) {
	h.mu.Lock()
	h.limit = n
	h.trimLocked()
	h.mu.Unlock()
}

func (h *history) trimLocked() {
	if over := len(h.runs) - h.limit; over > 0 {
		h.runs = append([]Result(nil), h.runs[over:]...)
	}
}

// add records r (its output cut to historyOutput) and writes the file. It
// returns the plug's last success time.
func (h *history) add(r Result) (time.Time, error) {
	if len(r.Output) > historyOutput {
		text := r.Text()
		if len(text) > historyOutput {
			text = text[:historyOutput]
		}
		r.setOutput([]byte(text), true)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.runs = append(h.runs, r)
	h.trimLocked()
	if r.Result == ResultSuccess && r.StartedAt.After(h.lastSuccess) {
		h.lastSuccess = r.StartedAt.Add(time.Duration(r.Duration * float64(time.Second)))
	}
	if h.path == "" {
		return h.lastSuccess, nil
	}
	b, err := json.Marshal(historyFile{LastSuccess: h.lastSuccess, Runs: h.runs})
	if err != nil {
		return h.lastSuccess, err
	}
	// Not fsynced: a power cut may lose the last runs, never tear the file.
	return h.lastSuccess, writeFileAtomic(h.path, b, 0o600, false)
}

// list returns up to n runs, newest first (n <= 0: all), of instance ("": all).
func (h *history) list(instance string, n int) []Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := []Result{}
	for i := len(h.runs) - 1; i >= 0 && (n <= 0 || len(out) < n); i-- {
		if instance == "" || h.runs[i].Instance == instance {
			out = append(out, h.runs[i])
		}
	}
	return out
}

func (h *history) last(instance string) *Result {
	if l := h.list(instance, 1); len(l) == 1 {
		return &l[0]
	}
	return nil
}

func (h *history) success() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastSuccess
}

// ReadHistory reads the runs of plug from a state directory without a
// daemon, newest first.
func ReadHistory(stateDir, plug string) ([]Result, error) {
	h, err := loadHistory(historyPath(stateDir, plug), 1<<30)
	if err != nil {
		return nil, err
	}
	return h.list("", 0), nil
}
