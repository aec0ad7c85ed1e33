package spec

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/plugs-dev/plugs/internal/redact"
)

// Health is the health part of a manifest or of a plug: its checks, its
// check_restart block and (plugs.hcl only) its update block.
type Health struct {
	Checks       []*Check
	CheckRestart *CheckRestart // nil: failing checks never restart the instance
	Update       *Update       // nil: changes replace every instance at once (plugs.hcl only)
}

// Check types.
const (
	CheckNotify = "notify" // sd_notify READY=1 (and WATCHDOG=1) on $NOTIFY_SOCKET
	CheckExec   = "exec"   // a command in the plugin directory; exit 0 is healthy
	CheckHTTP   = "http"   // GET url; a 2xx status (and expect_body) is healthy
	CheckTCP    = "tcp"    // a TCP connection to address succeeds
	CheckData   = "data"   // a message on the instance's data topic at least every within
)

// CheckTypes lists the check types, for diagnostics and docs.
var CheckTypes = []string{CheckNotify, CheckExec, CheckHTTP, CheckTCP, CheckData}

// Check defaults.
const (
	DefaultCheckInterval = 10 * time.Second
	DefaultCheckTimeout  = 5 * time.Second
	DefaultCheckFailures = 1
	// DefaultCheckRestartLimit and DefaultCheckRestartGrace are the values of
	// a check_restart {} block that leaves them out.
	DefaultCheckRestartLimit = 3
	DefaultCheckRestartGrace = 10 * time.Second
)

// Update defaults (Nomad's, where Nomad has them).
const (
	DefaultMaxParallel     = 1
	DefaultMinHealthyTime  = 10 * time.Second
	DefaultHealthyDeadline = 5 * time.Minute
)

// Check is one check "NAME" {} block.
type Check struct {
	Name string
	Type string // one of the Check constants

	// Interval is the time between two probes of an exec, http or tcp
	// check; Timeout bounds one probe. For notify, Timeout (0: none) is how
	// long after a start READY=1 may take before each further Timeout
	// without it counts as a failure.
	Interval time.Duration
	Timeout  time.Duration
	// Failures is how many consecutive failures make the check unhealthy.
	Failures int

	Command    []string      // exec: run in the plugin directory, with the instance's environment
	URL        string        // http
	ExpectBody string        // http: an RE2 regular expression the body must match; "" none
	Address    string        // tcp: host:port
	Within     time.Duration // data: the longest silence that is still healthy
	Watchdog   time.Duration // notify: WATCHDOG=1 must come at least this often; 0 none

	DeclRange hcl.Range
}

// CheckRestart is a check_restart {} block: restart an instance after Limit
// consecutive failures of any one check, not counting those in the first
// Grace after its start.
type CheckRestart struct {
	Limit     int
	Grace     time.Duration
	DeclRange hcl.Range
}

// Update is an update {} block: how a change of a plug's instances rolls out.
type Update struct {
	MaxParallel     int           // instances replaced at once
	MinHealthyTime  time.Duration // a batch must stay healthy this long before the next starts
	HealthyDeadline time.Duration // a batch not healthy by then fails the rollout
	AutoRevert      bool          // on failure, go back to the last healthy revision
	DeclRange       hcl.Range
}

var checkBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "type", Required: true}, {Name: "interval"}, {Name: "timeout"}, {Name: "failures"},
		{Name: "command"}, {Name: "url"}, {Name: "expect_body"}, {Name: "address"}, {Name: "within"}, {Name: "watchdog"},
	},
}

var checkRestartBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "limit"}, {Name: "grace"}},
}

var updateBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "max_parallel"}, {Name: "min_healthy_time"}, {Name: "healthy_deadline"}, {Name: "auto_revert"}},
}

// checkArgs says which arguments each check type takes, beyond type and
// failures, and which of them it requires.
var checkArgs = map[string]struct{ allowed, required []string }{
	CheckNotify: {allowed: []string{"timeout", "watchdog"}},
	CheckExec:   {allowed: []string{"interval", "timeout", "command"}, required: []string{"command"}},
	CheckHTTP:   {allowed: []string{"interval", "timeout", "url", "expect_body"}, required: []string{"url"}},
	CheckTCP:    {allowed: []string{"interval", "timeout", "address"}, required: []string{"address"}},
	CheckData:   {allowed: []string{"within"}, required: []string{"within"}},
}

// decodeHealthBlock decodes one check, check_restart or update block into
// h. update is accepted in plugs.hcl only (inPlug).
func (dc *decoder) decodeHealthBlock(b *hcl.Block, h *Health, inPlug bool) hcl.Diagnostics {
	switch b.Type {
	case "check":
		c, diags := dc.decodeCheck(b.Labels[0], b.LabelRanges[0], b.DefRange, b.Body)
		for _, prev := range h.Checks {
			if prev.Name == c.Name {
				return append(diags, errorf(b.LabelRanges[0], "Duplicate check block",
					"A check named %q was already declared at %s. Check names must be unique.", c.Name, prev.DeclRange))
			}
		}
		h.Checks = append(h.Checks, c)
		return diags
	case "check_restart":
		if h.CheckRestart != nil {
			return hcl.Diagnostics{errorf(b.DefRange, "Duplicate check_restart block",
				"Only one check_restart block is allowed here; another was declared at %s. Merge them into one.", h.CheckRestart.DeclRange)}
		}
		var diags hcl.Diagnostics
		h.CheckRestart, diags = dc.decodeCheckRestart(b)
		return diags
	case "update":
		if !inPlug {
			return hcl.Diagnostics{errorf(b.DefRange, "Unsupported block type",
				"An update block belongs in the plug block of plugs.hcl: how a change rolls out is the deployer's choice, not the plugin's.")}
		}
		if h.Update != nil {
			return hcl.Diagnostics{errorf(b.DefRange, "Duplicate update block",
				"Only one update block is allowed here; another was declared at %s. Merge them into one.", h.Update.DeclRange)}
		}
		var diags hcl.Diagnostics
		h.Update, diags = dc.decodeUpdate(b)
		return diags
	}
	return nil
}

// decodeCheck decodes the body of a check block (or, for plugin.json, a
// body made of the attributes of a JSON object).
func (dc *decoder) decodeCheck(name string, nameRange, declRange hcl.Range, body hcl.Body) (*Check, hcl.Diagnostics) {
	content, diags := body.Content(checkBlockSchema)
	return dc.decodeCheckAttrs(name, nameRange, declRange, content.Attributes, diags)
}

func (dc *decoder) decodeCheckAttrs(name string, nameRange, declRange hcl.Range, attrs hcl.Attributes, diags hcl.Diagnostics) (*Check, hcl.Diagnostics) {
	c := &Check{Name: name, Interval: DefaultCheckInterval, Timeout: DefaultCheckTimeout, Failures: DefaultCheckFailures, DeclRange: declRange}
	if !validName.MatchString(name) {
		diags = append(diags, errorf(nameRange, "Invalid check name",
			"A check name must start with a letter or digit and contain only letters, digits, '_', '.' and '-': it becomes a metric label."))
	}
	attr, ok := attrs["type"]
	if !ok {
		return c, diags // Content already reported the missing type
	}
	c.Type, _, diags = appendString(dc, attr, diags)
	args, known := checkArgs[c.Type]
	if !known {
		if c.Type != "" {
			diags = append(diags, errorf(attr.Expr.Range(), "Invalid check type",
				"The check type must be one of %s; %q is not.%s", strings.Join(CheckTypes, ", "), c.Type, didYouMean(c.Type, CheckTypes)))
		}
		return c, diags
	}
	if c.Type == CheckNotify {
		c.Timeout = 0 // no readiness deadline unless one is given
	}
	for _, n := range sortedKeys(attrs) {
		if n == "type" || n == "failures" || slices.Contains(args.allowed, n) {
			continue
		}
		diags = append(diags, errorf(attrs[n].NameRange, "Unsupported argument",
			"A %s check does not take %q; it takes %s.", c.Type, n, strings.Join(append([]string{"failures"}, args.allowed...), ", ")))
	}
	for _, n := range args.required {
		if _, ok := attrs[n]; !ok {
			diags = append(diags, errorf(declRange, "Missing required argument",
				"A %s check needs the argument %q.", c.Type, n))
		}
	}
	for n, dst := range map[string]*time.Duration{"interval": &c.Interval, "timeout": &c.Timeout, "within": &c.Within, "watchdog": &c.Watchdog} {
		if attr, ok := attrs[n]; ok {
			d, ok, ddiags := dc.evalDuration(attr)
			diags = append(diags, ddiags...)
			if ok && d == 0 && n != "timeout" {
				diags = append(diags, errorf(attr.Expr.Range(), "Invalid duration", "The argument %q must be longer than zero.", n))
			} else if ok {
				*dst = d
			}
		}
	}
	if attr, ok := attrs["interval"]; ok && c.Timeout > c.Interval {
		diags = append(diags, errorf(attr.Expr.Range(), "Timeout longer than interval",
			"The timeout (%s) of a check must not be longer than its interval (%s): one probe would still run when the next is due.", c.Timeout, c.Interval))
	}
	if attr, ok := attrs["failures"]; ok {
		n, ok, ndiags := dc.evalCount(attr)
		diags = append(diags, ndiags...)
		if ok && n == 0 {
			diags = append(diags, errorf(attr.Expr.Range(), "Invalid failures", "The argument \"failures\" must be 1 or more."))
		} else if ok {
			c.Failures = int(min(n, 1<<20))
		}
	}
	if attr, ok := attrs["command"]; ok {
		list, _, ldiags := dc.evalStrings(attr)
		diags = append(diags, ldiags...)
		c.Command = list
		if !ldiags.HasErrors() && (len(list) == 0 || list[0] == "") {
			diags = append(diags, errorf(attr.Expr.Range(), "Empty command",
				"The command argument must list a program and its arguments, like [\"./healthcheck\", \"--quick\"]."))
		}
	}
	if attr, ok := attrs["url"]; ok {
		var ok bool
		c.URL, ok, diags = appendString(dc, attr, diags)
		if ok && !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
			diags = append(diags, errorf(attr.Expr.Range(), "Invalid check URL",
				"The url of an http check must start with http:// or https://, like \"http://127.0.0.1:8080/healthz\"."))
		}
	}
	if attr, ok := attrs["expect_body"]; ok {
		var ok bool
		c.ExpectBody, ok, diags = appendString(dc, attr, diags)
		if _, err := regexp.Compile(c.ExpectBody); ok && err != nil {
			diags = append(diags, errorf(attr.Expr.Range(), "Invalid regular expression",
				"The expect_body argument is an RE2 regular expression: %s.", err))
		}
	}
	if attr, ok := attrs["address"]; ok {
		var ok bool
		c.Address, ok, diags = appendString(dc, attr, diags)
		if ok && !validHostPort(c.Address) {
			diags = append(diags, errorf(attr.Expr.Range(), "Invalid check address",
				"The address of a tcp check is host:port, like \"127.0.0.1:5432\"; %q is not.", redact.Text(c.Address)))
		}
	}
	return c, diags
}

func appendString(dc *decoder, attr *hcl.Attribute, diags hcl.Diagnostics) (string, bool, hcl.Diagnostics) {
	s, ok, sdiags := dc.evalString(attr)
	return s, ok, append(diags, sdiags...)
}

// validHostPort says whether s is host:port with a port in 1..65535 (IPv6
// hosts in brackets).
func validHostPort(s string) bool {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return false
	}
	host, port := s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") != strings.HasSuffix(host, "]") || strings.ContainsAny(strings.Trim(host, "[]"), " /") {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536
}

func (dc *decoder) decodeCheckRestart(b *hcl.Block) (*CheckRestart, hcl.Diagnostics) {
	cr := &CheckRestart{Limit: DefaultCheckRestartLimit, Grace: DefaultCheckRestartGrace, DeclRange: b.DefRange}
	content, diags := b.Body.Content(checkRestartBlockSchema)
	if attr, ok := content.Attributes["limit"]; ok {
		n, ok, ndiags := dc.evalCount(attr)
		diags = append(diags, ndiags...)
		if ok && n == 0 {
			diags = append(diags, errorf(attr.Expr.Range(), "Invalid limit",
				"The limit of check_restart must be 1 or more; remove the check_restart block to never restart on failing checks."))
		} else if ok {
			cr.Limit = int(min(n, 1<<20))
		}
	}
	if attr, ok := content.Attributes["grace"]; ok {
		d, ok, ddiags := dc.evalDuration(attr)
		diags = append(diags, ddiags...)
		if ok {
			cr.Grace = d
		}
	}
	return cr, diags
}

func (dc *decoder) decodeUpdate(b *hcl.Block) (*Update, hcl.Diagnostics) {
	u := &Update{MaxParallel: DefaultMaxParallel, MinHealthyTime: DefaultMinHealthyTime, HealthyDeadline: DefaultHealthyDeadline, DeclRange: b.DefRange}
	content, diags := b.Body.Content(updateBlockSchema)
	if attr, ok := content.Attributes["max_parallel"]; ok {
		n, ok, ndiags := dc.evalCount(attr)
		diags = append(diags, ndiags...)
		if ok && n == 0 {
			diags = append(diags, errorf(attr.Expr.Range(), "Invalid max_parallel",
				"The max_parallel of an update block must be 1 or more: it is how many instances are replaced at once."))
		} else if ok {
			u.MaxParallel = int(min(n, 1<<20))
		}
	}
	for n, dst := range map[string]*time.Duration{"min_healthy_time": &u.MinHealthyTime, "healthy_deadline": &u.HealthyDeadline} {
		if attr, ok := content.Attributes[n]; ok {
			d, ok, ddiags := dc.evalDuration(attr)
			diags = append(diags, ddiags...)
			if ok {
				*dst = d
			}
		}
	}
	if attr, ok := content.Attributes["auto_revert"]; ok {
		v, _, bdiags := dc.evalBool(attr)
		diags = append(diags, bdiags...)
		u.AutoRevert = v
	}
	if u.HealthyDeadline <= u.MinHealthyTime {
		diags = append(diags, errorf(b.DefRange, "Invalid update block",
			"The healthy_deadline (%s) must be longer than min_healthy_time (%s): a batch must be able to stay healthy that long before its deadline.", u.HealthyDeadline, u.MinHealthyTime))
	}
	return u, diags
}

// jsonChecks decodes the "checks" field of a plugin.json: an object keyed by
// check name whose values hold a check block's arguments, e.g.
// "checks": {"ready": {"type": "notify"}, "fresh": {"type": "data", "within": "30s"}}.
func (j *jsonManifest) checks(name string) []*Check {
	a, ok := j.attrs[name]
	if !ok {
		return nil
	}
	pairs, ok := stringPairs(a.Expr)
	if !ok {
		j.wrongType(a, "an object of checks keyed by name")
		return nil
	}
	dc := &decoder{}
	var out []*Check
	for _, pair := range pairs {
		fields, ok := stringPairs(pair.value)
		if !ok {
			j.diags = append(j.diags, errorf(pair.value.Range(), "Incorrect field type",
				"The check %q must be an object with its arguments, like {\"type\": \"data\", \"within\": \"30s\"}.", pair.key))
			continue
		}
		attrs := hcl.Attributes{}
		for _, f := range fields {
			if !slices.ContainsFunc(checkBlockSchema.Attributes, func(s hcl.AttributeSchema) bool { return s.Name == f.key }) {
				j.diags = append(j.diags, errorf(f.keyRange, "Unsupported argument",
					"A check has no argument %q.", f.key))
				continue
			}
			attrs[f.key] = &hcl.Attribute{Name: f.key, Expr: f.value, NameRange: f.keyRange, Range: f.value.Range()}
		}
		var diags hcl.Diagnostics
		if _, ok := attrs["type"]; !ok {
			diags = append(diags, errorf(pair.value.Range(), "Missing required argument", "The check %q needs a \"type\".", pair.key))
		}
		c, cdiags := dc.decodeCheckAttrs(pair.key, pair.keyRange, pair.value.Range(), attrs, diags)
		j.diags = append(j.diags, cdiags...)
		out = append(out, c)
	}
	return out
}

// EffectiveHealth is the health of a plug's instances: the manifest's checks
// with the plug's checks of the same name replacing them and its other checks
// added; the plug's check_restart over the manifest's; the plug's update.
// m may be nil.
func EffectiveHealth(m *Manifest, p *Plug) Health {
	var h Health
	if m != nil {
		h.Checks = slices.Clone(m.Health.Checks)
		h.CheckRestart = m.Health.CheckRestart
	}
	for _, c := range p.Health.Checks {
		if i := slices.IndexFunc(h.Checks, func(o *Check) bool { return o.Name == c.Name }); i >= 0 {
			h.Checks[i] = c
		} else {
			h.Checks = append(h.Checks, c)
		}
	}
	if p.Health.CheckRestart != nil {
		h.CheckRestart = p.Health.CheckRestart
	}
	h.Update = p.Health.Update
	return h
}
