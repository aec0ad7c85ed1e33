package fetch

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/plugs-dev/plugs/spec"
	"github.com/zclconf/go-cty/cty"
)

// formatLockWhole is FormatLock as it was: the whole file formatted at once.
func formatLockWhole(l *spec.Lock) []byte {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	names := make([]string, 0, len(l.Plugs))
	for n := range l.Plugs {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		e := l.Plugs[n]
		if i > 0 {
			body.AppendNewline()
		}
		setLockAttributes(body.AppendNewBlock("plug", []string{n}).Body(), e)
	}
	var buf bytes.Buffer
	buf.WriteString(LockHeader)
	buf.WriteString("\n")
	buf.Write(f.Bytes())
	return buf.Bytes()
}

// TestFormatLockBlockByBlock checks that FormatLock, which writes each
// block alone, writes what hclwrite formatting the whole file at once
// writes, over locks that change from one call to the next (entries
// added, removed, changed) and strings that need escaping.
func TestFormatLockBlockByBlock(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 17))
	odd := []string{"", "v1.2.3", "${x}", "%{if}", "a\"b", "tab\there", "nl\nx", "ünï", "https://u:p@h/x.zip", "\x01", "back\\slash", "$${y}"}
	str := func() string {
		if r.IntN(3) == 0 {
			return odd[r.IntN(len(odd))]
		}
		return fmt.Sprintf("s%d", r.IntN(1000))
	}
	l := &spec.Lock{Plugs: map[string]*spec.LockedPlug{}}
	for round := range 200 {
		for range r.IntN(20) {
			n := fmt.Sprintf("p%03d", r.IntN(60))
			if r.IntN(4) == 0 {
				delete(l.Plugs, n)
				continue
			}
			e := &spec.LockedPlug{Name: n, Source: "./" + str(), Revision: str(), Hash: "h2:" + str()}
			if r.IntN(2) == 0 {
				e.Constraint, e.Version = str(), str()
			}
			if r.IntN(3) == 0 {
				e.SHA256 = strings.Repeat("a", 64)
			}
			l.Plugs[n] = e
		}
		if got, want := FormatLock(l), formatLockWhole(l); !bytes.Equal(got, want) {
			t.Fatalf("round %d: block by block:\n%s\nwhole:\n%s", round, got, want)
		}
	}
}

// BenchmarkFormatLock formats a lock of 1,000 entries of which a tenth is
// new since the last call (a daemon's lock write after fetching 100 plugs),
// and formats it whole with hclwrite as FormatLock once did.
func BenchmarkFormatLock(b *testing.B) {
	lock := func(from int) *spec.Lock {
		l := &spec.Lock{Plugs: map[string]*spec.LockedPlug{}}
		for i := from; i < from+1000; i++ {
			n := fmt.Sprintf("c%05d", i)
			l.Plugs[n] = &spec.LockedPlug{Name: n, Source: "./empty", Revision: strings.Repeat("e", 64), Hash: "h2:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}
		}
		return l
	}
	b.Run("blocks", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			FormatLock(lock(i * 100))
			next := lock(i*100 + 100)
			b.StartTimer()
			FormatLock(next)
		}
	})
	b.Run("whole", func(b *testing.B) {
		l := lock(0)
		for b.Loop() {
			formatLockWhole(l)
		}
	})
}

// formatLockBlockHCLWrite is appendLockBlock as hclwrite writes it: the
// oracle of TestFormatLockMatchesHCLWrite.
func formatLockBlockHCLWrite(n string, e *spec.LockedPlug) []byte {
	f := hclwrite.NewEmptyFile()
	setLockAttributes(f.Body().AppendNewBlock("plug", []string{n}).Body(), e)
	return f.Bytes()
}

// setLockAttributes sets the attributes of e's plug block with hclwrite.
func setLockAttributes(b *hclwrite.Body, e *spec.LockedPlug) {
	b.SetAttributeValue("source", cty.StringVal(redact(e.Source)))
	if e.Constraint != "" {
		b.SetAttributeValue("constraint", cty.StringVal(e.Constraint))
	}
	if e.Version != "" {
		b.SetAttributeValue("version", cty.StringVal(e.Version))
	}
	b.SetAttributeValue("revision", cty.StringVal(e.Revision))
	b.SetAttributeValue("hash", cty.StringVal(e.Hash))
	if e.SHA256 != "" {
		b.SetAttributeValue("sha256", cty.StringVal(e.SHA256))
	}
}

// TestFormatLockMatchesHCLWrite: the block appendLockBlock writes directly
// is byte for byte what hclwrite writes, for names and values that need
// escaping or normalizing (templates, quotes, controls, non-printable
// runes on both sides of U+FFFF, combining marks, invalid UTF-8), every
// combination of optional attributes, and random rune soup.
func TestFormatLockMatchesHCLWrite(t *testing.T) {
	odd := []string{"", "plain", "${x}", "%{if x}", "$", "%", "$${y}", "%%{z}", "a$", "{$}", "a\"b", "tab\there", "nl\nx", "cr\rx",
		"back\\slash", "\x01\x7f", "ünï", "e\u0301", "\u00e9", "\u2028\u2029", "\U000e0001", "\U0001f600", "\xff\xfe", "a\x00b",
		"https://u:p@h/x.zip", "git::ssh://git@h/r.git?ref=v1"}
	r := rand.New(rand.NewPCG(7, 11))
	soup := func() string {
		var sb strings.Builder
		for range r.IntN(12) {
			switch r.IntN(4) {
			case 0:
				sb.WriteByte(byte(r.IntN(256)))
			case 1:
				sb.WriteRune(rune(r.IntN(0x3000)))
			case 2:
				sb.WriteString([]string{"$", "%", "{", "}", "\\", "\"", "\u0301"}[r.IntN(7)])
			default:
				sb.WriteRune(rune(0x10000 + r.IntN(0xf0000)))
			}
		}
		return sb.String()
	}
	check := func(n string, e *spec.LockedPlug) {
		t.Helper()
		got, want := appendLockBlock(nil, n, e), formatLockBlockHCLWrite(n, e)
		if !bytes.Equal(got, want) {
			t.Fatalf("name %q, entry %+v:\ndirect:\n%s\nhclwrite:\n%s", n, e, got, want)
		}
	}
	for i, s := range odd {
		for opt := range 8 {
			e := &spec.LockedPlug{Source: s, Revision: odd[(i+1)%len(odd)], Hash: "h2:" + s}
			if opt&1 != 0 {
				e.Constraint = s
			}
			if opt&2 != 0 {
				e.Version = odd[(i+2)%len(odd)]
			}
			if opt&4 != 0 {
				e.SHA256 = s
			}
			check(s, e)
		}
	}
	for range 2000 {
		check(soup(), &spec.LockedPlug{Source: soup(), Constraint: soup(), Version: soup(), Revision: soup(), Hash: soup(), SHA256: soup()})
	}
}
