package layout

import "path/filepath"

// The fixed names.
const (
	// StateDirName is the state directory's name beside plugs.hcl.
	StateDirName = ".plugs"
	// LockFileName is the lock's name beside plugs.hcl.
	LockFileName = "plugs.lock.hcl"
	// DeploymentFileName is the deployment file's default name.
	DeploymentFileName = "plugs.hcl"

	pluginsDir   = "plugins"
	cacheDir     = "cache"
	instancesDir = "instances"
	removedDir   = "removed"
	setupDir     = "setup"
	rolloutsDir  = "rollouts"
	tasksDir     = "tasks"
	taskInput    = "input"
	taskHistory  = "runs.json"
	taskSchedule = "schedule.json"
	socketName   = "plugs.sock"
	outputLog    = "output.log"
)

// LockFile is the lock of the deployment file deploymentFile.
func LockFile(deploymentFile string) string {
	return filepath.Join(filepath.Dir(deploymentFile), LockFileName)
}

// DefaultStateDir is the state directory of deploymentFile when none is named.
func DefaultStateDir(deploymentFile string) string {
	return filepath.Join(filepath.Dir(deploymentFile), StateDirName)
}

// Plugins is the folder of every plug's plugin trees; PluginDir one plug's;
// PluginTree one tree, by its key (a revision, or a revision and build hash).
// root is a state directory, or the root of an unpacked bundle.
func Plugins(root string) string               { return filepath.Join(root, pluginsDir) }
func PluginDir(root, plug string) string       { return filepath.Join(root, pluginsDir, plug) }
func PluginTree(root, plug, key string) string { return filepath.Join(root, pluginsDir, plug, key) }
func BundlePluginTree(plug, key string) string { return pluginsDir + "/" + plug + "/" + key } // slash-separated, inside a bundle
func Cache(stateDir string, parts ...string) string {
	return filepath.Join(append([]string{stateDir, cacheDir}, parts...)...)
}

// Instances is the folder of every instance's files; InstanceDir one's;
// OutputLog its captured output.
func Instances(stateDir string) string { return filepath.Join(stateDir, instancesDir) }
func InstanceDir(stateDir, plug, instance string) string {
	return filepath.Join(stateDir, instancesDir, plug, instance)
}
func OutputLog(stateDir, plug, instance string) string {
	return filepath.Join(stateDir, instancesDir, plug, instance, outputLog)
}

// Removed is where the folders of removed instances wait for their
// deletion, off the reconcile's path (runner.Runner.Remove).
func Removed(stateDir string) string { return filepath.Join(stateDir, removedDir) }

// OutputLogName is the name of an instance's captured output in its folder.
const OutputLogName = outputLog

// Socket is the local API's socket; Setup the folder of plugs setup's configs.
func Socket(stateDir string) string { return filepath.Join(stateDir, socketName) }
func Setup(stateDir string) string  { return filepath.Join(stateDir, setupDir) }

// Rollouts is the folder of the plugs' rollout records; RolloutFile one
// plug's: its revisions with their health verdicts, the last healthy one's
// specs, a hold, and the rollout under way (daemon/rollout.go).
func Rollouts(stateDir string) string { return filepath.Join(stateDir, rolloutsDir) }
func RolloutFile(stateDir, plug string) string {
	return filepath.Join(stateDir, rolloutsDir, plug+".json")
}

// Tasks is the folder of the task plugs' files (package task); TaskDir one
// plug's, which daemon/prune.go removes whole once plugs.hcl no longer
// declares the plug; TaskInput the folder of its runs' inputs (PLUGS_INPUT,
// a file while a run is under way), TaskHistory its run history
// (outputs included), TaskSchedule its schedules' last slots.
func Tasks(stateDir string) string         { return filepath.Join(stateDir, tasksDir) }
func TaskDir(stateDir, plug string) string { return filepath.Join(stateDir, tasksDir, plug) }
func TaskInput(stateDir, plug string) string {
	return filepath.Join(stateDir, tasksDir, plug, taskInput)
}
func TaskHistory(stateDir, plug string) string {
	return filepath.Join(stateDir, tasksDir, plug, taskHistory)
}
func TaskSchedule(stateDir, plug string) string {
	return filepath.Join(stateDir, tasksDir, plug, taskSchedule)
}
