package spec

import (
	"bytes"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// splitBytes is the size of the pieces a large plugs.hcl is parsed in.
//
// hclsyntax.ParseConfig lexes a whole file into one slice of tokens before
// parsing it. For a plugs.hcl of 1,000 plugs that slice holds 150,000
// tokens (14 MB), grown a quarter at a time, so the lexer allocates five
// times its size, and the parser reads it back from memory. Pieces of a
// couple of kilobytes, cut between the file's items, are lexed and parsed
// with their tokens in the cache, and allocate a third less
// (BenchmarkDecodeVsParse: pieces of 1 to 2 KB are the fastest; of 32 KB
// they lose most of the gain).
const splitBytes = 2 << 10

// parallelPieces is how many pieces each parsing goroutine takes at least:
// a small file is parsed in the caller's goroutine.
const parallelPieces = 4

// eachParallel calls fn(0) to fn(n-1), on up to GOMAXPROCS goroutines of
// at least per calls each (in the caller's goroutine when that makes one),
// and reports whether every call returned true. After a false one, the
// calls not begun yet are skipped.
func eachParallel(n, per int, fn func(i int) bool) bool {
	workers := min(runtime.GOMAXPROCS(0), n/max(per, 1))
	if workers < 2 {
		for i := range n {
			if !fn(i) {
				return false
			}
		}
		return true
	}
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && !failed.Load(); i = int(next.Add(1) - 1) {
				if !fn(i) {
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return !failed.Load()
}

// span is a piece of a file cut at line starts: src[start:end], whose first
// byte is at pos.
type span struct {
	start, end int
	pos        hcl.Pos
}

// spansOf cuts src at splits, line starts in increasing order (from
// checkNestingSplitHCL), into len(splits)+1 spans; false when a split is
// not a line start after the one before.
func spansOf(src []byte, splits []int) ([]span, bool) {
	out := make([]span, 0, len(splits)+1)
	pos, start := hcl.InitialPos, 0
	for i := 0; i <= len(splits); i++ {
		end := len(src)
		if i < len(splits) {
			end = splits[i]
		}
		if end <= start || end > len(src) || (start > 0 && src[start-1] != '\n') {
			return nil, false
		}
		out = append(out, span{start: start, end: end, pos: pos})
		// The next piece starts a line: its line is one more per newline.
		pos = hcl.Pos{Line: pos.Line + bytes.Count(src[start:end], []byte("\n")), Column: 1, Byte: end}
		start = end
	}
	return out, true
}

// parseSplit is hclsyntax.ParseConfig(src, filename, hcl.InitialPos),
// parsing src a piece at a time: splits (from checkNestingSplitHCL) are
// line starts between the items of the file's body, and parsing the items
// apart gives the tree parsing them together does. Any diagnostic in any
// piece, an argument set in two pieces (which ParseConfig reports), or no
// splits at all, and src is parsed whole, so that diagnostics are
// ParseConfig's own. FuzzParseSplit holds it to that.
func parseSplit(src []byte, filename string, splits []int) (*hcl.File, hcl.Diagnostics) {
	if len(splits) == 0 {
		return hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	}
	if f, ok := parsePieces(src, filename, splits); ok {
		return f, nil
	}
	return hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
}

func parsePieces(src []byte, filename string, splits []int) (*hcl.File, bool) {
	spans, ok := spansOf(src, splits)
	if !ok {
		return nil, false
	}
	type piece struct {
		span
		body *hclsyntax.Body
	}
	pieces := make([]piece, len(spans))
	for i, sp := range spans {
		pieces[i].span = sp
	}
	// Each piece is parsed on its own, so they are parsed in parallel: a
	// plugs.hcl of 1,000 plugs is ~50 pieces, ~0.5 ms each, on the path of
	// every reconcile and of the daemon's first start.
	ok = eachParallel(len(pieces), parallelPieces, func(k int) bool {
		pc := &pieces[k]
		f, diags := hclsyntax.ParseConfig(src[pc.start:pc.end], filename, pc.pos)
		if len(diags) > 0 || f == nil {
			return false
		}
		pc.body, _ = f.Body.(*hclsyntax.Body)
		return pc.body != nil
	})
	if !ok {
		return nil, false
	}
	attrs := hclsyntax.Attributes{}
	n := 0
	for _, pc := range pieces {
		n += len(pc.body.Blocks)
	}
	blocks := make(hclsyntax.Blocks, 0, n)
	for _, pc := range pieces {
		for name, a := range pc.body.Attributes {
			if _, dup := attrs[name]; dup {
				return nil, false
			}
			attrs[name] = a
		}
		blocks = append(blocks, pc.body.Blocks...)
	}
	first, last := pieces[0].body, pieces[len(pieces)-1].body
	// A File whose Nav (unexported, it finds the block around a range for
	// diagnostics) serves the whole body: ParseConfig's, of nothing, with
	// its body replaced.
	f, diags := hclsyntax.ParseConfig(nil, filename, hcl.InitialPos)
	root, ok := f.Body.(*hclsyntax.Body)
	if len(diags) > 0 || !ok {
		return nil, false
	}
	*root = hclsyntax.Body{
		Attributes: attrs,
		Blocks:     blocks,
		SrcRange:   hcl.RangeBetween(first.SrcRange, last.SrcRange),
		EndRange:   last.EndRange,
	}
	f.Bytes = src
	return f, true
}
