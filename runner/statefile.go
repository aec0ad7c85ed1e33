package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/plugs-dev/plugs/internal/atomicfile"
)

// InstanceFile is the content of <state>/instances/<plug>/<instance>/instance.json.
// It is rewritten on every state a process can be found in (running,
// backoff, stopping, stopped, failed); "starting", which lasts only until
// the fork returns, is reported to observers alone.
type InstanceFile struct {
	UUID     string `json:"uuid,omitempty"`
	Plug     string `json:"plug"`
	Instance string `json:"instance"`
	Version  string `json:"version,omitempty"`
	Revision string `json:"revision,omitempty"`
	// The plugin's own identity, from its manifest.
	PluginUUID    string    `json:"plugin_uuid,omitempty"`
	PluginName    string    `json:"plugin_name,omitempty"`
	PluginVersion string    `json:"plugin_version,omitempty"`
	Description   string    `json:"description,omitempty"`
	PID           int       `json:"pid,omitempty"`
	PIDStartTime  uint64    `json:"pid_start_time,omitempty"` // /proc/<pid>/stat field 22
	State         string    `json:"state"`
	Reason        string    `json:"reason,omitempty"`
	Since         time.Time `json:"since"`
	StartedAt     time.Time `json:"started_at,omitzero"`
	Restarts      int       `json:"restarts"`
	ConfigHash    string    `json:"config_hash,omitempty"`
	LastExit      *ExitFile `json:"last_exit,omitempty"`
}

// ExitFile is how the last process of an instance ended.
type ExitFile struct {
	Code   int       `json:"code"`
	Signal string    `json:"signal,omitempty"`
	At     time.Time `json:"at"`
	// OOMKilled: killed at its cgroup memory limit (sandbox.go).
	OOMKilled bool `json:"oom_killed,omitempty"`
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
	return replaceFile(name, data, perm, true)
}

// writeConfigFile writes an instance's config.json, unless it already holds
// data with mode perm (a restart of an unchanged instance). The rename makes
// it atomic for the process that reads it; it is not synced, because it is
// derived: the runner renders it again before every process it starts, so
// a file lost or torn by a crash of the machine is never read, only
// rewritten (the byte comparison sees the difference).
func writeConfigFile(name string, data []byte, perm os.FileMode) error {
	if sameFile(name, data, perm) {
		return nil
	}
	return replaceFile(name, data, perm, false)
}

// sameFile reports whether name is a regular file with mode perm holding
// exactly data.
func sameFile(name string, data []byte, perm os.FileMode) bool {
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != perm || fi.Size() != int64(len(data)) {
		return false
	}
	old := make([]byte, len(data)+1) // one more: a file that grew meanwhile differs
	n, err := io.ReadFull(f, old)
	return err == io.ErrUnexpectedEOF && bytes.Equal(old[:n], data)
}

// replaceFile writes data to name through a temporary file in the same
// directory and a rename: readers see the old content or the new, never a
// torn file. With durable, the data is synced before the rename, so that
// the same holds after a crash of the machine. The rule is
// internal/atomicfile's.
func replaceFile(name string, data []byte, perm os.FileMode, durable bool) error {
	return atomicfile.Write(name, data, perm, atomicfile.Sync(durable))
}

func writeInstanceFile(name string, f *InstanceFile) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	return writeFileAtomic(name, append(b, '\n'), 0o600)
}
