package spec

import (
	"bytes"

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
	attrs := hclsyntax.Attributes{}
	var blocks hclsyntax.Blocks
	var first, last *hclsyntax.Body
	pos, start := hcl.InitialPos, 0
	for i := 0; i <= len(splits); i++ {
		end := len(src)
		if i < len(splits) {
			end = splits[i]
		}
		if end <= start || end > len(src) || (start > 0 && src[start-1] != '\n') {
			return nil, false
		}
		f, diags := hclsyntax.ParseConfig(src[start:end], filename, pos)
		if len(diags) > 0 {
			return nil, false
		}
		body, ok := f.Body.(*hclsyntax.Body)
		if !ok {
			return nil, false
		}
		for name, a := range body.Attributes {
			if _, dup := attrs[name]; dup {
				return nil, false
			}
			attrs[name] = a
		}
		if blocks == nil { // as many per byte as in the first piece
			blocks = make(hclsyntax.Blocks, 0, len(body.Blocks)*len(src)/end+1)
		}
		blocks = append(blocks, body.Blocks...)
		if first == nil {
			first = body
		}
		last = body
		// The next piece starts a line: its line is one more per newline.
		pos = hcl.Pos{Line: pos.Line + bytes.Count(src[start:end], []byte("\n")), Column: 1, Byte: end}
		start = end
	}
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
