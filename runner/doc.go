// Package runner spawns, stops, restarts and tracks plugin instances: process
// groups, backoff, output capture and instance state files. It implements
// instance.Executor.
//
// Each instance is one goroutine (run), the only writer of its status and
// files but two that a first start leaves to the housekeeper, made once
// the starts pause (housekeep.go); the housekeeper also deletes the
// folders of removed instances, which Remove renames out of instances/
// at once (runner.go, discard). The exits of the instances' processes (pidfds) and their output
// pipes are watched by one poller goroutine for the whole process
// (poller.go), which wakes the instance's goroutine for an exit and copies
// output into output.log from a short-lived goroutine; an idle instance
// costs its goroutine's small stack and no other.
//
// Every fork runs on a spawner thread (spawner.go): locked for the
// Runner's life, so that a child's parent-death signal means the daemon's
// death, and with a descriptor table of its own, so that an exec does not
// close the daemon's thousands of descriptors and a child gets only its
// 0-2 (and the sandbox shim's pipe).
//
// One-shot runs (RunOnce: hooks, task runs, exec checks, setup) get an
// instance's environment, process group and kill rules (once.go); with a
// Sandboxer they are confined as the instance's process is (sandbox.go,
// confine), each in a cgroup of its own that is killed and removed when
// the run ends.
//
// It does not read plugs.hcl: everything it knows of an instance comes in a
// instance.Spec. It does not confine processes itself: package sandbox
// does, through the Sandboxer the daemon hands it.
package runner
