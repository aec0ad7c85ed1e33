package spec

import (
	"bytes"
	"math"
	"strconv"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// The number rule. HCL and cty hold numbers as big.Float, and plugs writes
// them out in full decimal: in config.json, and wherever a number becomes
// a string (an env value, a template, a string param). 1e9999999 — nine
// bytes, a valid HCL and JSON number — is ten million digits, 30 s of CPU
// to format inside a reconcile and a 10 MB config.json. So every number
// must be one a float64 holds, which is what the JSON readers of plugins
// (Python, JavaScript, Go) hold anyway:
//
//   - every number literal of plugs.hcl, plugin.hcl, plugin.json, the lock
//     and a -var value: refused at parse time, at the literal, before
//     anything evaluates or formats it (checkNumbersHCL, checkNumbersJSON);
//   - every value a param takes (the manifest's default, the plug's or the
//     instance's, computed ones such as 1e300 * 1e300 included), at its
//     range, before it is converted to the param's type (checkParamNumbers).
//
// "Holds" means: finite, at most math.MaxFloat64 (about 1.8e308) in
// magnitude, and zero or at least math.SmallestNonzeroFloat64 (about
// 4.9e-324). Precision is not part of the rule: 0.1 and 3.14159265358979323846
// pass (cty keeps 512 bits, which bounds the digits written).

// numberLiteralOK reports whether the number literal text (HCL or JSON
// syntax, an optional '-' then decimal digits, a fraction and an exponent)
// is held by a float64.
func numberLiteralOK(text []byte) bool {
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return false // ErrRange: past MaxFloat64; ErrSyntax: not ours to judge, but not a float64 either
	}
	if f != 0 {
		return true
	}
	// ParseFloat rounds an underflow to 0 without an error: a literal is
	// zero only when its digits before the exponent are.
	mantissa := text
	if i := bytes.IndexAny(text, "eE"); i >= 0 {
		mantissa = text[:i]
	}
	return bytes.IndexFunc(mantissa, func(r rune) bool { return r >= '1' && r <= '9' }) < 0
}

// numberValueOK reports whether the number v is held by a float64.
func numberValueOK(v cty.Value) bool {
	bf := v.AsBigFloat()
	if bf.IsInf() {
		return false
	}
	f, _ := bf.Float64()
	return !math.IsInf(f, 0) && (f != 0 || bf.Sign() == 0)
}

// numberOutOfRange is the diagnostic of a number a float64 does not hold.
func numberOutOfRange(rng hcl.Range, what string) *hcl.Diagnostic {
	return errorf(rng, "Number out of range",
		"%s is not a number a 64-bit float holds: plugs takes numbers up to about 1.8e308 in magnitude, and no smaller than about 4.9e-324 unless zero, which is what the JSON readers of plugins hold. Write a smaller number, or a string.", what)
}

// maxPlainDigits and maxPlainExponent bound the number literals
// mayHoldBigNumber lets pass without lexing: a run of at most 250 digits
// and dots with an exponent under 50 is between 1e-300 and 1e300.
const (
	maxPlainDigits   = 250
	maxPlainExponent = 50
)

// mayHoldBigNumber reports whether src may hold a number literal a float64
// does not hold: a run of digits not glued to a name (a hex hash, an
// identifier) longer than maxPlainDigits, or followed by an exponent of
// maxPlainExponent or more. It looks inside strings and comments too, so
// that it never misses one: what it flags, the lexer decides.
func mayHoldBigNumber(src []byte) bool {
	for i := 0; i < len(src); i++ {
		c := src[i]
		if !isDigit(c) || i > 0 && isNameByte(src[i-1]) {
			continue
		}
		j := i
		for j < len(src) && (isDigit(src[j]) || src[j] == '.') {
			j++
		}
		if j-i > maxPlainDigits {
			return true
		}
		if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
			k := j + 1
			if k < len(src) && (src[k] == '+' || src[k] == '-') {
				k++
			}
			exp, start := 0, k
			for k < len(src) && isDigit(src[k]) {
				exp = min(exp*10+int(src[k]-'0'), maxPlainExponent)
				k++
			}
			if k > start && exp >= maxPlainExponent && (k == len(src) || !isNameByte(src[k])) {
				return true
			}
			j = k
		}
		i = j
	}
	return false
}

func isNameByte(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

// checkNumbersHCL refuses the number literals of native HCL source that a
// float64 does not hold (see the number rule), at each literal.
func checkNumbersHCL(src []byte, filename string) hcl.Diagnostics {
	if !mayHoldBigNumber(src) {
		return nil
	}
	toks, _ := hclsyntax.LexConfig(src, filename, hcl.InitialPos)
	var diags hcl.Diagnostics
	for _, tok := range toks {
		if tok.Type == hclsyntax.TokenNumberLit && !numberLiteralOK(tok.Bytes) {
			diags = append(diags, numberOutOfRange(tok.Range, "This number"))
		}
	}
	return diags
}

// checkNumbersJSON is checkNumbersHCL for JSON source: outside strings,
// only numbers hold digits and '-'.
func checkNumbersJSON(src []byte, filename string) hcl.Diagnostics {
	if !mayHoldBigNumber(src) {
		return nil
	}
	var diags hcl.Diagnostics
	outsideJSONStrings(src, func(i int) int {
		if c := src[i]; c != '-' && !isDigit(c) {
			return i + 1
		}
		j := i + 1
		for j < len(src) && (isDigit(src[j]) || bytes.IndexByte([]byte(".eE+-"), src[j]) >= 0) {
			j++
		}
		if !numberLiteralOK(src[i:j]) {
			rng := hcl.Range{Filename: filename, Start: offsetPos(src, i), End: offsetPos(src, j)}
			diags = append(diags, numberOutOfRange(rng, "This number"))
		}
		return j
	})
	return diags
}

// checkParamNumbers refuses a param value (a number, or a collection that
// holds one) that a float64 does not hold, at rng.
func checkParamNumbers(v cty.Value, name string, m *Manifest, rng hcl.Range) *hcl.Diagnostic {
	bad := false
	_ = cty.Walk(v, func(_ cty.Path, e cty.Value) (bool, error) {
		if !bad && e.IsKnown() && !e.IsNull() && e.Type() == cty.Number && !numberValueOK(e) {
			bad = true
		}
		return !bad, nil
	})
	if !bad {
		return nil
	}
	return numberOutOfRange(rng, "The value of param "+quote(name)+" of plugin "+quote(m.Name))
}
