package spec

import (
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/robfig/cron/v3"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Task is the task part of a manifest or a plug: its task {} block and its
// schedule {} blocks. A plug whose manifest or plug block has either is a
// task: run when called or on its schedules, never kept running. Zero fields
// are unset (render fills the defaults of instance.Task).
type Task struct {
	MaxConcurrent int
	Queue         *int // nil: unset; 0: no queue
	Timeout       time.Duration
	MaxTimeout    time.Duration
	OutputLimit   int // bytes
	MaxOutput     int // bytes
	History       int
	Schedules     []*Schedule
	// HasTaskBlock says a task {} block was written (schedules alone also
	// make a task).
	HasTaskBlock bool
	DeclRange    hcl.Range
}

// Schedule is one schedule {} block: cron or every.
type Schedule struct {
	Cron       string
	Every      time.Duration
	UTC        bool // time_zone = "UTC"; default "local"
	Persistent bool
	Jitter     *time.Duration // nil: automatic
	Overlap    bool
	Input      string
	DeclRange  hcl.Range
}

var taskBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "max_concurrent"}, {Name: "queue"}, {Name: "timeout"}, {Name: "max_timeout"},
		{Name: "output_limit"}, {Name: "max_output"}, {Name: "history"}},
}

var scheduleBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "cron"}, {Name: "every"}, {Name: "time_zone"}, {Name: "persistent"},
		{Name: "jitter"}, {Name: "overlap"}, {Name: "input"}},
}

// decodeTaskBlock decodes a task or schedule block into *t (allocated on
// the first one).
func (dc *decoder) decodeTaskBlock(b *hcl.Block, t **Task) hcl.Diagnostics {
	if *t == nil {
		*t = &Task{DeclRange: b.DefRange}
	}
	if b.Type == "schedule" {
		s, diags := dc.decodeSchedule(b)
		(*t).Schedules = append((*t).Schedules, s)
		return diags
	}
	task := *t
	if task.HasTaskBlock {
		return hcl.Diagnostics{errorf(b.DefRange, "Duplicate task block",
			"Only one task block is allowed here; another was declared at %s. Merge them into one.", task.DeclRange)}
	}
	task.HasTaskBlock, task.DeclRange = true, b.DefRange
	content, diags := b.Body.Content(taskBlockSchema)
	return append(diags, dc.decodeTaskAttrs(task, content.Attributes)...)
}

// decodeTaskAttrs decodes the arguments of a task block (or of a
// plugin.json "task" object) into task.
func (dc *decoder) decodeTaskAttrs(task *Task, attrs hcl.Attributes) hcl.Diagnostics {
	var diags hcl.Diagnostics
	content := &hcl.BodyContent{Attributes: attrs}
	for name, dst := range map[string]*int{"max_concurrent": &task.MaxConcurrent, "history": &task.History} {
		if attr, ok := content.Attributes[name]; ok {
			n, ok, ndiags := dc.evalCount(attr)
			diags = append(diags, ndiags...)
			if ok && (n == 0 || n > 1<<20) {
				diags = append(diags, errorf(attr.Expr.Range(), "Invalid number",
					"The argument %q must be at least 1 (and at most %d).", name, 1<<20))
				continue
			}
			if ok {
				*dst = int(n)
			}
		}
	}
	if attr, ok := content.Attributes["queue"]; ok {
		n, ok, ndiags := dc.evalCount(attr)
		diags = append(diags, ndiags...)
		if ok && n > 1<<20 {
			diags = append(diags, errorf(attr.Expr.Range(), "Invalid number", "The queue may hold at most %d calls.", 1<<20))
		} else if ok {
			q := int(n)
			task.Queue = &q
		}
	}
	for name, dst := range map[string]*time.Duration{"timeout": &task.Timeout, "max_timeout": &task.MaxTimeout} {
		if attr, ok := content.Attributes[name]; ok {
			d, ok, ddiags := dc.evalPositiveDuration(attr, "a run needs time to do anything")
			diags = append(diags, ddiags...)
			if ok {
				*dst = d
			}
		}
	}
	for name, dst := range map[string]*int{"output_limit": &task.OutputLimit, "max_output": &task.MaxOutput} {
		if attr, ok := content.Attributes[name]; ok {
			n, ok, ndiags := dc.evalOutputSize(attr)
			diags = append(diags, ndiags...)
			if ok {
				*dst = n
			}
		}
	}
	if task.Timeout > 0 && task.MaxTimeout > 0 && task.MaxTimeout < task.Timeout {
		diags = append(diags, errorf(content.Attributes["max_timeout"].Expr.Range(), "Invalid max_timeout",
			"The max_timeout (%s) is shorter than timeout (%s). Make it at least as long.", task.MaxTimeout, task.Timeout))
	}
	if task.OutputLimit > 0 && task.MaxOutput > 0 && task.MaxOutput < task.OutputLimit {
		diags = append(diags, errorf(content.Attributes["max_output"].Expr.Range(), "Invalid max_output",
			"The max_output (%d bytes) is smaller than output_limit (%d bytes). Make it at least as large.", task.MaxOutput, task.OutputLimit))
	}
	return diags
}

// cronReference is the time a cron expression's next run is looked up
// from to tell one that never runs: any fixed time does (an expression no
// date matches has no next time from any), and a fixed one keeps decoding
// a pure function of its input.
var cronReference = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// cronEvery is the interval of a cron "@every D" descriptor (after an
// optional TZ= or CRON_TZ= prefix, as robfig/cron reads it). robfig/cron
// runs one under a second, zero or negative every second: it is held to
// the every argument's minimum instead.
func cronEvery(expr string) (time.Duration, bool) {
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		if i := strings.Index(expr, " "); i >= 0 {
			expr = strings.TrimSpace(expr[i:])
		}
	}
	rest, ok := strings.CutPrefix(expr, "@every ")
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(rest)
	return d, err == nil
}

func (dc *decoder) decodeSchedule(b *hcl.Block) (*Schedule, hcl.Diagnostics) {
	content, diags := b.Body.Content(scheduleBlockSchema)
	s, sdiags := dc.decodeScheduleAttrs(b.DefRange, content.Attributes)
	return s, append(diags, sdiags...)
}

// decodeScheduleAttrs decodes the arguments of a schedule block (or of one
// plugin.json "schedule" object) declared at rng.
func (dc *decoder) decodeScheduleAttrs(rng hcl.Range, attrs hcl.Attributes) (*Schedule, hcl.Diagnostics) {
	s := &Schedule{DeclRange: rng}
	var diags hcl.Diagnostics
	cronAttr, hasCron := attrs["cron"]
	everyAttr, hasEvery := attrs["every"]
	switch {
	case hasCron && hasEvery:
		diags = append(diags, errorf(everyAttr.NameRange, "Conflicting schedule",
			"A schedule block takes cron or every, not both. Write two schedule blocks to run on both."))
	case !hasCron && !hasEvery:
		diags = append(diags, errorf(rng, "Missing schedule",
			"A schedule block needs cron = \"*/5 * * * *\" (minute hour day month weekday, or @hourly, @daily…) or every = \"5m\"."))
	}
	if hasCron {
		if expr, ok, sdiags := dc.evalString(cronAttr); ok {
			diags = append(diags, sdiags...)
			if sched, err := cron.ParseStandard(expr); err != nil {
				diags = append(diags, errorf(cronAttr.Expr.Range(), "Invalid cron expression",
					"The cron expression %q is not valid: %s. Give five fields (minute hour day-of-month month day-of-week), such as \"*/5 * * * *\" or \"30 2 * * 1-5\", or a descriptor such as @hourly or @daily.", expr, err))
			} else if d, ok := cronEvery(expr); ok && d < time.Second {
				diags = append(diags, errorf(cronAttr.Expr.Range(), "Interval too short",
					"A schedule runs at most once a second; cron = %q is shorter. Give \"@every 1s\" or more.", expr))
			} else if sched.Next(cronReference).IsZero() {
				diags = append(diags, errorf(cronAttr.Expr.Range(), "Schedule never runs",
					"The cron expression %q names no date that exists (such as February 30th or April 31st), so it would never run. Give a day of the month that the month has, such as \"0 0 28 2 *\".", expr))
			}
			s.Cron = expr
		} else {
			diags = append(diags, sdiags...)
		}
	}
	if hasEvery {
		d, ok, ddiags := dc.evalPositiveDuration(everyAttr, "a task run back to back would keep a core busy")
		diags = append(diags, ddiags...)
		if ok && d < time.Second {
			diags = append(diags, errorf(everyAttr.Expr.Range(), "Interval too short",
				"A schedule runs at most once a second; every = %q is shorter. Give \"1s\" or more.", d))
		} else if ok {
			s.Every = d
		}
	}
	if attr, ok := attrs["time_zone"]; ok {
		tz, ok, sdiags := dc.evalString(attr)
		diags = append(diags, sdiags...)
		switch {
		case !ok:
		case strings.EqualFold(tz, "UTC"):
			s.UTC = true
		case strings.EqualFold(tz, "local"):
		default:
			diags = append(diags, errorf(attr.Expr.Range(), "Invalid time zone",
				"The time_zone must be \"local\" (the host's, the default) or \"UTC\"; %q is neither.", tz))
		}
		if ok && hasEvery {
			diags = append(diags, warnf(attr.NameRange, "Time zone has no effect",
				"An every schedule counts elapsed time; time_zone only applies to cron."))
		}
	}
	for name, dst := range map[string]*bool{"persistent": &s.Persistent, "overlap": &s.Overlap} {
		if attr, ok := attrs[name]; ok {
			v, _, bdiags := dc.evalBool(attr)
			diags = append(diags, bdiags...)
			*dst = v
		}
	}
	if attr, ok := attrs["jitter"]; ok {
		d, ok, ddiags := dc.evalDuration(attr)
		diags = append(diags, ddiags...)
		if ok {
			s.Jitter = &d
		}
	}
	if attr, ok := attrs["input"]; ok {
		in, _, sdiags := dc.evalString(attr)
		diags = append(diags, sdiags...)
		s.Input = in
	}
	return s, diags
}

// evalOutputSize evaluates an output size: a whole number of bytes, or a
// string with a unit (ParseBytes: "64KiB", "1MiB"), from 1 byte to 1 GiB.
func (dc *decoder) evalOutputSize(attr *hcl.Attribute) (int, bool, hcl.Diagnostics) {
	v, diags := dc.eval(attr.Expr)
	if diags.HasErrors() {
		return 0, false, diags
	}
	var n uint64
	ok := false
	if v.IsKnown() && !v.IsNull() {
		switch v.Type() {
		case cty.Number:
			bf := v.AsBigFloat()
			if bf.Sign() > 0 && bf.IsInt() && bf.Cmp(big.NewFloat(1<<30)) <= 0 {
				n, _ = bf.Uint64()
				ok = true
			}
		case cty.String:
			n, ok = ParseBytes(v.AsString())
		}
	}
	if !ok || n == 0 || n > 1<<30 {
		return 0, false, append(diags, errorf(attr.Expr.Range(), "Invalid size",
			"The argument %q must be a number of bytes from 1 to 1GiB, or a string such as \"64KiB\" or \"1MiB\".", attr.Name))
	}
	return int(n), true, diags
}

// EffectiveTask is the task settings of plug: the plug's task {} over the
// manifest's, field by field, and the plug's schedules instead of the
// manifest's when it has any. Nil when neither makes the plug a task.
func EffectiveTask(plug *Plug, m *Manifest) *Task {
	var base, over *Task
	if m != nil {
		base = m.Task
	}
	if plug != nil {
		over = plug.Task
	}
	switch {
	case base == nil && over == nil:
		return nil
	case base == nil:
		return over
	case over == nil:
		return base
	}
	t := *base
	if over.MaxConcurrent > 0 {
		t.MaxConcurrent = over.MaxConcurrent
	}
	if over.Queue != nil {
		t.Queue = over.Queue
	}
	for _, f := range []struct{ dst, src *time.Duration }{{&t.Timeout, &over.Timeout}, {&t.MaxTimeout, &over.MaxTimeout}} {
		if *f.src > 0 {
			*f.dst = *f.src
		}
	}
	for _, f := range []struct{ dst, src *int }{{&t.OutputLimit, &over.OutputLimit}, {&t.MaxOutput, &over.MaxOutput}, {&t.History, &over.History}} {
		if *f.src > 0 {
			*f.dst = *f.src
		}
	}
	if len(over.Schedules) > 0 {
		t.Schedules = over.Schedules
	}
	t.HasTaskBlock = base.HasTaskBlock || over.HasTaskBlock
	t.DeclRange = over.DeclRange
	return &t
}

// The fields of plugin.json that declare a task, in both legacy shapes:
// "task" is plugin.hcl's task {} block as an object (an empty one makes a
// task with the defaults), "schedule" its schedule {} blocks as one object
// or a list of them.
var (
	jsonTaskFields     = schemaAttrNames(taskBlockSchema)
	jsonScheduleFields = schemaAttrNames(scheduleBlockSchema)
)

func schemaAttrNames(s *hcl.BodySchema) []string {
	out := make([]string, len(s.Attributes))
	for i, a := range s.Attributes {
		out[i] = a.Name
	}
	return out
}

// task decodes plugin.json's "task" and "schedule" fields into the Task
// that plugin.hcl's blocks would make; nil when it has neither.
func (j *jsonManifest) task() *Task {
	ta, hasTask := j.attrs["task"]
	sa, hasSched := j.attrs["schedule"]
	if !hasTask && !hasSched {
		return nil
	}
	dc := &decoder{}
	t := &Task{}
	if hasTask {
		t.DeclRange = ta.NameRange
		if attrs, ok := j.jsonArgs(ta.Expr, "task", jsonTaskFields, false); ok {
			t.HasTaskBlock = true
			j.diags = append(j.diags, dc.decodeTaskAttrs(t, attrs)...)
		} else {
			j.wrongType(ta, `an object of task settings, like {"max_concurrent": 4, "timeout": "30s"} ({} for the defaults)`)
		}
	}
	if hasSched {
		if !hasTask {
			t.DeclRange = sa.NameRange
		}
		elems := []hcl.Expression{sa.Expr}
		if list, diags := hcl.ExprList(sa.Expr); !diags.HasErrors() {
			elems = list
		}
		for _, e := range elems {
			attrs, ok := j.jsonArgs(e, "schedule", jsonScheduleFields, true)
			if !ok {
				j.diags = append(j.diags, errorf(e.Range(), "Incorrect field type",
					`The field "schedule" must be an object like {"cron": "*/5 * * * *"} or {"every": "5m"}, or a list of them.`))
				continue
			}
			s, sdiags := dc.decodeScheduleAttrs(e.Range(), attrs)
			j.diags = append(j.diags, sdiags...)
			t.Schedules = append(t.Schedules, s)
		}
	}
	return t
}

// jsonArgs turns a JSON object into the arguments of the block it stands
// for; a member that is no argument of the block is an error, as in
// plugin.hcl. With inputAsJSON, an "input" that is not a string (an object,
// a list) is taken as the JSON text it is, as plugin.hcl's
// input = jsonencode({...}) would write it.
func (j *jsonManifest) jsonArgs(expr hcl.Expression, what string, fields []string, inputAsJSON bool) (hcl.Attributes, bool) {
	pairs, ok := stringPairs(expr)
	if !ok {
		return nil, false
	}
	attrs := hcl.Attributes{}
	for _, f := range pairs {
		if !slices.Contains(fields, f.key) {
			j.diags = append(j.diags, errorf(f.keyRange, "Unsupported argument",
				"A %s has no argument %q.%s", what, f.key, didYouMean(f.key, fields)))
			continue
		}
		value := f.value
		if inputAsJSON && f.key == "input" {
			if v, diags := f.value.Value(nil); !diags.HasErrors() && v.IsWhollyKnown() && !v.IsNull() && v.Type() != cty.String {
				b, err := ctyjson.Marshal(v, v.Type())
				if err == nil {
					value = hcl.StaticExpr(cty.StringVal(string(b)), f.value.Range())
				}
			}
		}
		attrs[f.key] = &hcl.Attribute{Name: f.key, Expr: value, NameRange: f.keyRange, Range: hcl.RangeBetween(f.keyRange, f.value.Range())}
	}
	return attrs, true
}
