package spec

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// schemaBodies names every block body the walk knows, by the path of the
// block that holds it; a block type without an entry here fails the walk.
// Bodies that share a schema (the inline plugin block and plugin.hcl's)
// share their fields.
func schemaBodies() map[string]*hcl.BodySchema {
	return map[string]*hcl.BodySchema{
		"plugs.hcl":                 deploymentSchema,
		"variable":                  variableBlockSchema,
		"broker":                    brokerBlockSchema,
		"plug":                      plugBlockSchema,
		"plug.instance":             instanceBlockSchema,
		"plug.instance.limits":      limitsBlockSchema,
		"plug.restart":              restartBlockSchema,
		"plug.limits":               limitsBlockSchema,
		"plug.plugin":               pluginBlockSchema,
		"plug.check":                checkBlockSchema,
		"plug.check_restart":        checkRestartBlockSchema,
		"plug.update":               updateBlockSchema,
		"plug.sandbox":              sandboxBlockSchema,
		"plug.task":                 taskBlockSchema,
		"plug.schedule":             scheduleBlockSchema,
		"plug.hooks":                hooksBlockSchema,
		"plugin.hcl":                manifestFileSchema,
		"plugin":                    pluginBlockSchema,
		"plugin.param":              paramBlockSchema,
		"plugin.hooks":              hooksBlockSchema,
		"plugin.check":              checkBlockSchema,
		"plugin.check_restart":      checkRestartBlockSchema,
		"plugin.task":               taskBlockSchema,
		"plugin.schedule":           scheduleBlockSchema,
		"plug.plugin.param":         paramBlockSchema,
		"plug.plugin.hooks":         hooksBlockSchema,
		"plug.plugin.check":         checkBlockSchema,
		"plug.plugin.check_restart": checkRestartBlockSchema,
		"plug.plugin.task":          taskBlockSchema,
		"plug.plugin.schedule":      scheduleBlockSchema,
		"plugs.lock.hcl":            lockFileSchema,
		"plugs.lock.hcl plug":       lockedPlugSchema,
	}
}

// schemaNames names the schemas, for the field keys of fieldEvidence.
func schemaNames() map[*hcl.BodySchema]string {
	return map[*hcl.BodySchema]string{
		deploymentSchema: "plugs.hcl", variableBlockSchema: "variable", brokerBlockSchema: "broker",
		plugBlockSchema: "plug", instanceBlockSchema: "instance", restartBlockSchema: "restart",
		limitsBlockSchema: "limits", pluginBlockSchema: "plugin", checkBlockSchema: "check",
		checkRestartBlockSchema: "check_restart", updateBlockSchema: "update", sandboxBlockSchema: "sandbox",
		taskBlockSchema: "task", scheduleBlockSchema: "schedule", manifestFileSchema: "plugin.hcl",
		paramBlockSchema: "param", hooksBlockSchema: "hooks", lockFileSchema: "plugs.lock.hcl",
		lockedPlugSchema: "lock.plug",
	}
}

// fieldEvidence says, for every field a user can write, how it is kept:
//
//	test:A,B   honoured; A and B are tests (Go test functions anywhere in
//	           the module, or testscripts "script:NAME") that show its effect
//	warn:S     decoded and warned about with the diagnostic summary S
//	refuse:S   refused with the diagnostic summary S
//	doc:WHY    documentation only (a description), decoded and checked
//	pending:WHO: WHAT   honoured by another helper's work in progress
//
// A field of the schemas or the plugin.json shapes without an entry fails
// TestEveryFieldHonouredOrWarned, and so does an entry whose tests do not
// exist or whose summary spec never emits.
var fieldEvidence = map[string]string{
	"plugs.hcl.host":          "test:TestDesiredGolden,TestLoadDeploymentFull",
	"plugs.hcl.variable":      "test:TestVariableTypes",
	"plugs.hcl.broker":        "test:TestDesiredGolden",
	"plugs.hcl.plug":          "test:TestLoadDeploymentFull",
	"variable.default":        "test:TestVariableTypes,TestLoadDeploymentFull",
	"variable.type":           "test:TestVariableTypes",
	"variable.description":    "doc:a variable's description documents it; its expression is checked",
	"broker.url":              "test:TestDesiredGolden,TestMosquittoBroker",
	"broker.username":         "test:TestDesiredGolden,TestMosquittoBroker",
	"broker.password":         "test:TestReconcileErrorRedactsBrokerPassword,TestSecretLinesBlankInSnippets",
	"plug.source":             "test:TestEverySourceKindThroughValidateFetchAndRun,TestArchiveURL,TestSymlinkedSourceIsCopied",
	"plug.version":            "test:TestResolveVersion,TestGitServers",
	"plug.params":             "test:TestDesiredGolden",
	"plug.depends_on":         "test:TestApplyOrdersByDependsOn,TestCloseStopsInReverseDependencyOrder,TestApplyWaitsForReadyDependency,TestDependsOnWaitsForReady",
	"plug.env":                "test:TestEnvConfigAndOutput",
	"plug.stop_timeout":       "test:TestStopEscalatesAndKillsGrandchild,TestDefaultHostAndInstance",
	"plug.enabled":            "test:TestDesiredGolden",
	"plug.user":               "test:TestUserName,TestSandboxDefaultUserAndPermissions",
	"plug.group":              "test:TestGroupIsTheProcessGroupID",
	"plug.instance":           "test:TestDesiredGolden",
	"plug.restart":            "test:TestBackoffSchedule,TestBackoffWithFakeClock",
	"plug.plugin":             "test:TestDesiredGolden,TestInlineBuildChange",
	"plug.limits":             "test:TestLimitsAndNoNewPrivs,TestSandboxAndCgroupLimits",
	"plug.check":              "test:TestActiveCheckReadinessAndLiveness,TestChecksDecodeAndOverride",
	"plug.check_restart":      "test:TestCheckRestartAfterLimitPastGrace",
	"plug.update":             "test:TestRolloutHealthyInBatches,TestDecidePlug",
	"plug.sandbox":            "test:TestSandboxDefaultUserAndPermissions,TestSandboxDiagnostics",
	"plug.task":               "test:TestTaskDecodeAndOverride,TestRunOnceExitOutputInputEnv",
	"plug.schedule":           "test:TestCronInLocalTimeZone,TestTaskDecodeAndOverride",
	"plug.hooks":              "test:TestPlugHooksBlock,TestHooksPlugOverManifest,TestHooksOrder",
	"instance.params":         "test:TestDesiredGolden",
	"instance.limits":         "test:TestSandboxAndCgroupLimits",
	"restart.initial_delay":   "test:TestBackoffSchedule,TestBackoffWithFakeClock",
	"restart.max_delay":       "test:TestBackoffSchedule,TestBackoffJitterNeverExceedsMaxDelay",
	"restart.reset_after":     "test:TestBackoffSchedule",
	"restart.max_restarts":    "test:TestBackoffSchedule",
	"limits.nofile":           "test:TestLimitsAndNoNewPrivs",
	"limits.address_space":    "test:TestLimitsAndNoNewPrivs",
	"limits.nproc":            "test:TestLimitsAndNoNewPrivs",
	"limits.no_new_privs":     "test:TestLimitsAndNoNewPrivs",
	"limits.memory":           "test:TestMemoryLimitOOMKilled,TestSandboxOOMKilledAndRestarted",
	"limits.cpu":              "test:TestSandboxAndCgroupLimits,TestV2",
	"limits.pids":             "test:TestForkBombContained,TestSandboxForkBombContained",
	"plugin.hcl.plugin":       "test:TestManifestTwins",
	"plugin.version":          "test:TestDesiredGolden",
	"plugin.uuid":             "test:TestDesiredGolden",
	"plugin.description":      "test:TestDesiredGolden",
	"plugin.instructions":     "test:TestPagesShowInstancesAndNoSecret",
	"plugin.kind":             "test:TestCommandFileChecked",
	"plugin.command":          "test:TestRelativeCommandRunsTheTreesFile,TestCommandFileChecked",
	"plugin.build":            "test:TestBuildAndRunnable,TestInlineBuildChange",
	"plugin.setup":            "test:TestLegacyStepCountSetup",
	"plugin.setup_required":   "test:TestNeedsSetup,script:setup",
	"plugin.exports":          "test:TestPagesShowInstancesAndNoSecret",
	"plugin.stop_signal":      "test:TestStopSignalReachesTheProcess",
	"plugin.permissions":      "test:TestSandboxDefaultUserAndPermissions,TestFilesystem,TestNetwork",
	"plugin.author":           "test:TestStatusCarriesPluginInfo,TestPluginLines",
	"plugin.license":          "test:TestStatusCarriesPluginInfo,TestPluginLines",
	"plugin.param":            "test:TestDesiredGolden,TestDesiredDiagnostics",
	"plugin.hooks":            "test:TestHooksOrder,TestHooksPlugOverManifest",
	"plugin.check":            "test:TestChecksDecodeAndOverride,TestActiveCheckReadinessAndLiveness",
	"plugin.check_restart":    "test:TestCheckRestartAfterLimitPastGrace",
	"plugin.task":             "test:TestTaskDecodeAndOverride",
	"plugin.schedule":         "test:TestTaskDecodeAndOverride",
	"param.type":              "test:TestDesiredDiagnostics,TestErrorFixtures",
	"param.required":          "test:TestDesiredDiagnostics,TestSeedMHealthParamNames",
	"param.default":           "test:TestDesiredGolden",
	"param.secret":            "test:TestConfigDiffShowsSecretChangeRedacted,TestSecretLinesBlankInSnippets",
	"param.description":       "doc:a param's description documents it",
	"hooks.pre_start":         "test:TestHooksOrder,TestPreStartFailureIsAFailedStart,TestHookTimeouts",
	"hooks.post_start":        "test:TestHooksOrder,TestPostStartFailureStopsTheProcess,TestDependsOnWaitsForReady,TestDependsOnDeadline",
	"hooks.pre_stop":          "test:TestHooksOrder,TestHookTimeouts",
	"check.type":              "test:TestHTTPProbe,TestTCPProbe,TestExecProbe,TestDataCheck",
	"check.interval":          "test:TestActiveCheckReadinessAndLiveness",
	"check.timeout":           "test:TestActiveCheckReadinessAndLiveness",
	"check.failures":          "test:TestActiveCheckReadinessAndLiveness",
	"check.command":           "test:TestExecProbe",
	"check.url":               "test:TestHTTPProbe",
	"check.expect_body":       "test:TestHTTPProbe",
	"check.address":           "test:TestTCPProbe",
	"check.within":            "test:TestDataCheck",
	"check.watchdog":          "test:TestNotifyReadinessAndWatchdog",
	"check_restart.limit":     "test:TestCheckRestartAfterLimitPastGrace",
	"check_restart.grace":     "test:TestCheckRestartAfterLimitPastGrace",
	"update.max_parallel":     "test:TestRolloutHealthyInBatches,TestBatches",
	"update.min_healthy_time": "test:TestRolloutHealthyInBatches,TestBatchVerdict",
	"update.healthy_deadline": "test:TestRolloutNeverReadyReverted,TestBatchVerdict,TestApplyDependencyDeadline,TestDependsOnDeadline",
	"update.auto_revert":      "test:TestRolloutNeverReadyReverted,TestRolloutCrashAfterStartReverted",
	"sandbox.permissions":     "test:TestSandboxDefaultUserAndPermissions,TestFilesystem",
	"sandbox.groups":          "test:TestSandboxDiagnostics",
	"sandbox.enabled":         "test:TestSandboxDiagnostics",
	"task.max_concurrent":     "test:TestConcurrentCallsAreBoundedAndNoneLost",
	"task.queue":              "test:TestQueuedCallLeavesWhenItsCallerGoes",
	"task.timeout":            "test:TestExecTimeoutIsBoundedByMaxTimeout",
	"task.max_timeout":        "test:TestExecTimeoutIsBoundedByMaxTimeout",
	"task.output_limit":       "test:TestExecOutputCapIsTheCallersToRaiseUpToTheLimit",
	"task.max_output":         "test:TestExecOutputCapIsTheCallersToRaiseUpToTheLimit",
	"task.history":            "test:TestHistoryIsBoundedAndSurvivesARestart",
	"schedule.cron":           "test:TestCronScheduleAcrossClockStepsAndRestart",
	"schedule.every":          "test:TestEveryIgnoresWallClockSteps",
	"schedule.time_zone":      "test:TestCronInLocalTimeZone",
	"schedule.persistent":     "test:TestEveryPersistentRunsAtStartWhenDue,TestCronWithoutPersistentSkipsMissedRuns",
	"schedule.jitter":         "test:TestJitterIsSmallStableAndSpread",
	"schedule.overlap":        "test:TestScheduleSkipsOverlappingRuns",
	"schedule.input":          "test:TestExecEnvironmentAndInputFile",
	"plugs.lock.hcl.plug":     "test:TestLock",
	"lock.plug.source":        "test:TestFrozen,TestLock",
	"lock.plug.constraint":    "test:TestFrozen",
	"lock.plug.version":       "test:TestGitServers",
	"lock.plug.revision":      "test:TestGitServers,TestHandEditedLockHash",
	"lock.plug.hash":          "test:TestFrozen,TestExecBitIdentifiesTree,TestOldH1LockAcceptedAndUpgraded",
	"lock.plug.sha256":        "test:TestArchiveURL",

	// plugin.json, mHealth plugin-server shape: the same Manifest fields as
	// plugin.hcl (TestManifestTwins decodes both to the same value).
	"mhealth.uuid":                  "test:TestManifestTwins,TestDesiredGolden",
	"mhealth.name":                  "test:TestManifestTwins",
	"mhealth.version":               "test:TestManifestTwins,TestDesiredGolden",
	"mhealth.description":           "test:TestManifestTwins,TestDesiredGolden",
	"mhealth.instructions":          "test:TestManifestTwins,TestPagesShowInstancesAndNoSecret",
	"mhealth.type":                  "test:TestManifestTwins,TestCommandFileChecked",
	"mhealth.cli command":           "test:TestManifestTwins,TestLegacyStepCount",
	"mhealth.cli args":              "test:TestManifestTwins,TestLegacyStepCount",
	"mhealth.config requirement":    "test:TestSeedMHealthParamNames",
	"mhealth.config cli command":    "test:TestLegacyStepCountSetup",
	"mhealth.config cli args":       "test:TestLegacyStepCountSetup",
	"mhealth.mqtt data export type": "test:TestManifestTwins,TestPagesShowInstancesAndNoSecret",
	"mhealth.configParams":          "test:TestSeedMHealthParamNames,TestManifestTwins",
	"mhealth.checks":                "test:TestChecksInPluginJSON",
	"mhealth.task":                  "test:TestManifestTwins,TestTaskInPluginJSON,script:exec",
	"mhealth.schedule":              "test:TestManifestTwins,TestTaskInPluginJSON",
	"configParam.name":              "test:TestSeedMHealthParamNames",
	"configParam.type":              "test:TestManifestTwins",
	"configParam.required":          "test:TestManifestTwins",
	"configParam.default":           "test:TestManifestTwins",
	"configParam.description":       "doc:a param's description documents it",
	"configParam.secret":            "test:TestManifestTwins,TestLegacyStepCount",

	// plugin.json, MobileOps shape.
	"mobileops.name":                           "test:TestManifestTwins",
	"mobileops.version":                        "test:TestManifestTwins",
	"mobileops.description":                    "test:TestManifestTwins",
	"mobileops.type":                           "test:TestManifestTwins",
	"mobileops.checks":                         "test:TestChecksInPluginJSON",
	"mobileops.task":                           "test:TestTaskInPluginJSON",
	"mobileops.schedule":                       "test:TestManifestTwins,TestTaskInPluginJSON",
	"mobileops.entry_point":                    "test:TestEntryPoint,TestCommandFileChecked,TestRelativeCommandRunsTheTreesFile",
	"mobileops.configuration":                  "test:TestManifestTwins",
	"mobileops.hooks":                          "test:TestHooksOrder,TestHooksPlugOverManifest",
	"mobileops.permissions":                    "test:TestSandboxDefaultUserAndPermissions",
	"mobileops.author":                         "test:TestStatusCarriesPluginInfo,TestPluginLines",
	"mobileops.license":                        "test:TestStatusCarriesPluginInfo,TestPluginLines",
	"mobileops.dependencies":                   "test:TestPythonDepsInstalledAtBuild,TestSeedMobileOps",
	"mobileops.compatibility":                  "test:TestCompatibilityChecked",
	"mobileops.installed_at":                   "doc:written by the MobileOps manager when it installs a plugin; kept with the manifest, nothing to run",
	"mobileops.setup_required":                 "test:TestNeedsSetup",
	"mobileops.compatibility.platform_version": "test:TestCompatibilityChecked",
	"mobileops.compatibility.python_version":   "test:TestCompatibilityChecked",
	"mobileops.hooks.pre_start":                "test:TestHooksOrder,TestPreStartFailureIsAFailedStart",
	"mobileops.hooks.post_start":               "test:TestHooksOrder,TestPostStartFailureStopsTheProcess",
	"mobileops.hooks.pre_stop":                 "test:TestHooksOrder,TestHookTimeouts",
}

// walkFields lists the fields of every schema reachable from the roots,
// as "<schema name>.<attribute or block type>", and every JSON field.
func walkFields(t *testing.T) []string {
	bodies, names := schemaBodies(), schemaNames()
	seen := map[string]bool{}
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	var walk func(path string, schema *hcl.BodySchema)
	walk = func(path string, schema *hcl.BodySchema) {
		name, ok := names[schema]
		if !ok {
			t.Errorf("the schema at %s has no name in schemaNames", path)
			return
		}
		for _, a := range schema.Attributes {
			add(name + "." + a.Name)
		}
		for _, b := range schema.Blocks {
			add(name + "." + b.Type)
			child := b.Type
			if path != "plugs.hcl" && path != "plugin.hcl" && path != "plugs.lock.hcl" {
				child = path + "." + b.Type
			} else if path == "plugs.lock.hcl" {
				child = path + " " + b.Type
			}
			cs, ok := bodies[child]
			if !ok || cs == nil {
				t.Errorf("block %s: the walk knows no schema of its body; add it to schemaBodies", child)
				continue
			}
			walk(child, cs)
		}
	}
	for _, root := range []string{"plugs.hcl", "plugin.hcl", "plugs.lock.hcl"} {
		walk(root, bodies[root])
	}
	for _, f := range mhealthFields {
		add("mhealth." + f)
	}
	for _, f := range configParamFields {
		add("configParam." + f)
	}
	for _, f := range mobileOpsFields {
		add("mobileops." + f)
	}
	for _, f := range compatibilityFields {
		add("mobileops.compatibility." + f)
	}
	for _, f := range mobileOpsHooks {
		add("mobileops.hooks." + f)
	}
	sort.Strings(out)
	return out
}

// TestEveryFieldHonouredOrWarned walks the schemas of plugs.hcl, plugin.hcl
// and the lock and both plugin.json shapes, and fails for a field that is
// neither honoured (with the tests of its effect, which must exist) nor
// refused or warned (with a diagnostic spec emits): the next field cannot
// be parsed and forgotten. Fields honoured by work in progress are logged.
func TestEveryFieldHonouredOrWarned(t *testing.T) {
	tests, sources := moduleTests(t)
	fields := walkFields(t)
	walked := map[string]bool{}
	for _, f := range fields {
		walked[f] = true
		ev, ok := fieldEvidence[f]
		if !ok {
			t.Errorf("field %s is neither honoured (with a test of its effect) nor refused or warned: add it to fieldEvidence", f)
			continue
		}
		kind, rest, _ := strings.Cut(ev, ":")
		switch kind {
		case "test":
			for _, name := range strings.Split(rest, ",") {
				if !tests[name] {
					t.Errorf("field %s: no test %s in the module", f, name)
				}
			}
		case "warn", "refuse":
			if !strings.Contains(sources, `"`+rest+`"`) {
				t.Errorf("field %s: spec never emits %q", f, rest)
			}
		case "doc":
		case "pending":
			t.Logf("field %s: %s", f, rest)
		default:
			t.Errorf("field %s: evidence %q is none of test:, warn:, refuse:, doc:, pending:", f, ev)
		}
	}
	for f := range fieldEvidence {
		if !walked[f] {
			t.Errorf("fieldEvidence lists %s, which no schema has", f)
		}
	}
}

// moduleTests returns the names of the module's Go tests and testscripts
// (as "script:NAME"), and spec's non-test sources joined.
func moduleTests(t *testing.T) (map[string]bool, string) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Skip("not inside the module")
	}
	testFunc := regexp.MustCompile(`(?m)^func (Test\w+)\(`)
	tests := map[string]bool{}
	var sources strings.Builder
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == ".plugs") {
			return filepath.SkipDir
		}
		switch {
		case strings.HasSuffix(p, "_test.go"):
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, m := range testFunc.FindAllSubmatch(b, -1) {
				tests[string(m[1])] = true
			}
		case strings.HasSuffix(p, ".txtar"):
			tests["script:"+strings.TrimSuffix(d.Name(), ".txtar")] = true
		case strings.HasSuffix(p, ".go") && filepath.Dir(p) == filepath.Join(root, "spec"):
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sources.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tests, sources.String()
}
