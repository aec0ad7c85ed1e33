package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// InstanceFile is the content of <state>/instances/<plug>/<instance>/instance.json.
// It is rewritten on every state a process can be found in (running,
// backoff, stopping, stopped, failed); "starting", which lasts only until
// the fork returns, is reported to observers alone.
type InstanceFile struct {
	UUID         string    `json:"uuid,omitempty"`
	Plug         string    `json:"plug"`
	Instance     string    `json:"instance"`
	Version      string    `json:"version,omitempty"`
	Revision     string    `json:"revision,omitempty"`
	PID          int       `json:"pid,omitempty"`
	PIDStartTime uint64    `json:"pid_start_time,omitempty"` // /proc/<pid>/stat field 22
	State        string    `json:"state"`
	Reason       string    `json:"reason,omitempty"`
	Since        time.Time `json:"since"`
	StartedAt    time.Time `json:"started_at,omitzero"`
	Restarts     int       `json:"restarts"`
	ConfigHash   string    `json:"config_hash,omitempty"`
	LastExit     *ExitFile `json:"last_exit,omitempty"`
}

// ExitFile is how the last process of an instance ended.
type ExitFile struct {
	Code   int       `json:"code"`
	Signal string    `json:"signal,omitempty"`
	At     time.Time `json:"at"`
}

// ReadInstanceFile reads and parses an instance.json.
func ReadInstanceFile(name string) (*InstanceFile, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var f InstanceFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	return &f, nil
}

// writeFileAtomic writes data to name through a temporary file in the same
// directory, synced before the rename, so that a reader (or a restart after
// a crash) sees the old content or the new, never a torn file.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(name)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

func writeInstanceFile(name string, f *InstanceFile) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return writeFileAtomic(name, append(b, '\n'), 0o600)
}
