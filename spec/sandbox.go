package spec

import (
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/plugs-dev/plugs/sandbox/perms"
)

// Sandbox is a plug's sandbox block: what its instances may do beyond what
// the manifest's permissions declare.
//
//	sandbox {
//	  permissions = ["filesystem.write:/var/lib/x", "network.tcp:5432"]
//	  groups      = ["dialout"]   # supplementary groups
//	  enabled     = true          # false: no Landlock rules (limits and the user switch stay)
//	}
type Sandbox struct {
	Permissions []string
	Groups      []string
	Disabled    bool
	DeclRange   hcl.Range
}

var sandboxBlockSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "permissions"}, {Name: "groups"}, {Name: "enabled"}},
}

func (dc *decoder) decodeSandbox(b *hcl.Block, s *Sandbox) hcl.Diagnostics {
	s.DeclRange = b.DefRange
	content, diags := b.Body.Content(sandboxBlockSchema)
	if attr, ok := content.Attributes["permissions"]; ok {
		list, _, ldiags := dc.evalStrings(attr)
		diags = append(diags, ldiags...)
		s.Permissions = list
		diags = append(diags, checkPermissions(list, attr.Expr.Range())...)
	}
	if attr, ok := content.Attributes["groups"]; ok {
		list, _, ldiags := dc.evalStrings(attr)
		diags = append(diags, ldiags...)
		s.Groups = list
	}
	if attr, ok := content.Attributes["enabled"]; ok {
		v, ok, bdiags := dc.evalBool(attr)
		diags = append(diags, bdiags...)
		s.Disabled = ok && !v
	}
	return diags
}

// checkPermissions warns about each permission plugs does not understand
// (it is then not granted).
func checkPermissions(list []string, rng hcl.Range) hcl.Diagnostics {
	_, problems := perms.Parse(list)
	var diags hcl.Diagnostics
	for _, p := range problems {
		diags = append(diags, warnf(rng, "Unknown permission",
			"The %s. It grants nothing: the plugin runs without it.", p))
	}
	return diags
}

// decodeCgroupLimits decodes memory, cpu and pids of a limits block.
func (dc *decoder) decodeCgroupLimits(content *hcl.BodyContent, l *Limits) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if attr, ok := content.Attributes["memory"]; ok {
		n, ok, mdiags := dc.evalBytes(attr)
		diags = append(diags, mdiags...)
		if ok {
			l.Memory = n
		}
	}
	if attr, ok := content.Attributes["cpu"]; ok {
		v, ok, cdiags := dc.evalAs(attr, cty.Number, "a number of CPUs, like 0.5")
		diags = append(diags, cdiags...)
		if ok {
			f, _ := v.AsBigFloat().Float64()
			if f < 0.01 || f > 1024 {
				diags = append(diags, errorf(attr.Expr.Range(), "Invalid CPU limit",
					"The cpu limit is a number of CPUs between 0.01 and 1024, like 0.5 for half of one."))
			} else {
				l.CPU = f
			}
		}
	}
	if attr, ok := content.Attributes["pids"]; ok {
		n, ok, ndiags := dc.evalCount(attr)
		diags = append(diags, ndiags...)
		if ok && n == 0 {
			diags = append(diags, errorf(attr.Expr.Range(), "Invalid pids limit",
				"The pids limit counts the instance's processes and threads: it must be at least 1 (a Python or Go plugin needs about 8)."))
		} else if ok {
			l.PIDs = n
		}
	}
	return diags
}

var bytesRe = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B?|B)?\s*$`)

// ParseBytes reads a size: a number of bytes, or one with a unit (KiB, MiB,
// GiB, TiB; K, M, G, T and KB, MB, GB, TB are read as the binary units too,
// as cgroups and Docker do).
func ParseBytes(s string) (uint64, bool) {
	m := bytesRe.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	mult := 1.0
	if u := strings.TrimSuffix(strings.TrimSuffix(m[2], "B"), "i"); u != "" {
		mult = math.Pow(1024, float64(strings.Index("KMGT", u)+1))
	}
	v := f * mult
	if v >= math.MaxUint64 {
		return 0, false
	}
	return uint64(v), true
}

// evalBytes evaluates a memory size: "256MiB", or a number of bytes.
func (dc *decoder) evalBytes(attr *hcl.Attribute) (uint64, bool, hcl.Diagnostics) {
	v, diags := dc.eval(attr.Expr)
	if diags.HasErrors() || v.IsNull() || !v.IsKnown() {
		return 0, false, diags
	}
	var n uint64
	ok := false
	switch v.Type() {
	case cty.Number:
		bf := v.AsBigFloat()
		if bf.Sign() >= 0 && bf.IsInt() && bf.Cmp(new(big.Float).SetUint64(math.MaxUint64)) <= 0 {
			n, _ = bf.Uint64()
			ok = true
		}
	case cty.String:
		n, ok = ParseBytes(v.AsString())
	}
	if !ok || n < 1<<20 {
		return 0, false, append(diags, errorf(attr.Expr.Range(), "Invalid memory size",
			"The %s limit must be a size of at least 1MiB, like \"256MiB\" or \"1GiB\" (or a number of bytes).", attr.Name))
	}
	return n, true, diags
}

// decodeInstanceLimits gives each instance that has its own limits block
// the plug's limits with that block's arguments over them.
func (dc *decoder) decodeInstanceLimits(plug *Plug) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, inst := range plug.Instances {
		blk := dc.instanceLimits[inst]
		if blk == nil {
			continue
		}
		delete(dc.instanceLimits, inst)
		l := plug.Limits
		diags = append(diags, dc.decodeLimits(blk, &l)...)
		inst.Limits = &l
	}
	return diags
}

// keepInstanceLimits notes an instance's limits block (at most one) for
// decodeInstanceLimits.
func (dc *decoder) keepInstanceLimits(inst *Instance, blocks hcl.Blocks) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, blk := range blocks {
		if prev := dc.instanceLimits[inst]; prev != nil {
			diags = append(diags, duplicateBlock(blk, prev, blk.Type))
			continue
		}
		if dc.instanceLimits == nil {
			dc.instanceLimits = map[*Instance]*hcl.Block{}
		}
		dc.instanceLimits[inst] = blk
	}
	return diags
}

// InstanceLimits are the limits of one instance: its own block's over the plug's.
func (p *Plug) InstanceLimits(inst *Instance) Limits {
	if inst != nil && inst.Limits != nil {
		return *inst.Limits
	}
	return p.Limits
}
