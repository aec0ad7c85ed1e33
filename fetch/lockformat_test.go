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
		b := body.AppendNewBlock("plug", []string{n}).Body()
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
	var buf bytes.Buffer
	buf.WriteString(LockHeader)
	buf.WriteString("\n")
	buf.Write(f.Bytes())
	return buf.Bytes()
}

// TestFormatLockBlockByBlock checks that FormatLock, which formats each
// block alone and remembers it, writes what formatting the whole file at
// once writes, over locks that change from one call to the next (entries
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
// and formats it whole as FormatLock did before it remembered blocks.
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
