package render

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/plugs-dev/plugs/instance"
	"github.com/plugs-dev/plugs/spec"
)

func TestTaskFillsDefaults(t *testing.T) {
	if Task(&spec.Plug{}, &spec.Manifest{}) != nil {
		t.Fatal("a service became a task")
	}
	zero := 0
	got := Task(&spec.Plug{Task: &spec.Task{MaxConcurrent: 3, Queue: &zero,
		Schedules: []*spec.Schedule{{Every: time.Minute, Persistent: true}}}}, nil)
	want := &instance.Task{
		MaxConcurrent: 3, Queue: -1, Timeout: instance.DefaultTaskTimeout, MaxTimeout: instance.DefaultTaskTimeout,
		OutputLimit: instance.DefaultTaskOutputLimit, MaxOutput: instance.DefaultTaskMaxOutput, History: instance.DefaultTaskHistory,
		Schedules: []instance.Schedule{{Every: time.Minute, Persistent: true}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("task (-want +got):\n%s", diff)
	}
	if again := got.WithDefaults(); !cmp.Equal(*got, again) {
		t.Fatal("WithDefaults is not idempotent")
	}
	got = Task(&spec.Plug{Task: &spec.Task{MaxConcurrent: 2}}, nil)
	if got.Queue != 8 {
		t.Fatalf("default queue = %d, want 4 × max_concurrent", got.Queue)
	}
}
