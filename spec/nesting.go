package spec

import (
	"bytes"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// maxNesting bounds how deeply brackets, braces, parentheses, templates and
// chained unary or conditional operators may nest in any file spec parses.
// Both HCL parsers recurse once per level: past ~100,000 levels the native
// parser overflows the goroutine stack, a fatal error no recover() catches,
// and the JSON parser copies its diagnostics at every level, so an input of
// unclosed '[' takes time quadratic in its length (30s for 100 KB). Manifests
// come from fetched trees and bundles, so this must hold for hostile input.
// No hand-written file comes near this depth.
const maxNesting = 1000

// tooDeep is the diagnostic for a file nested deeper than maxNesting.
func tooDeep(filename string, pos hcl.Pos) hcl.Diagnostics {
	rng := hcl.Range{Filename: filename, Start: pos, End: pos}
	return hcl.Diagnostics{errorf(rng, "Nesting too deep",
		"Brackets, braces, parentheses, templates and operators nest more than %d levels deep here; plugs does not read files nested this deeply. Flatten the expression.", maxNesting)}
}

// checkNestingHCL rejects native HCL source nested deeper than maxNesting
// before it reaches the recursive parser.
func checkNestingHCL(src []byte, filename string) hcl.Diagnostics {
	diags, _ := checkNestingSplitHCL(src, filename, 0)
	return diags
}

// checkNestingSplitHCL is checkNestingHCL that also returns where src may
// be cut into pieces of at least every bytes for parsing one at a time
// (see parseSplit): line starts outside any bracket, string, heredoc or
// comment. every 0, a file smaller than twice every, or one the byte
// scanner does not model exactly gets none.
func checkNestingSplitHCL(src []byte, filename string, every int) (hcl.Diagnostics, []int) {
	if every > 0 && len(src) < 2*every {
		every = 0
	}
	// Every level of nesting starts at one of these bytes, so a file with
	// fewer of them cannot be too deep.
	openers := 0
	for _, c := range src {
		switch c {
		case '(', '[', '{', '"', '<', '-', '!', '?':
			openers++
		}
	}
	if openers <= maxNesting && every == 0 {
		return nil, nil
	}
	off, splits, ok := scanNestingHCL(src, maxNesting, every)
	if !ok {
		// Something the byte scanner does not model exactly: ask the lexer.
		off, splits = lexNestingHCL(src, maxNesting), nil
	}
	if off >= 0 {
		return tooDeep(filename, offsetPos(src, off)), nil
	}
	return nil, splits
}

// nesting tracks open levels: frames holds, for each open bracket, brace,
// parenthesis, string, heredoc or template sequence, the operators (-, !,
// ?) seen in it, each of which makes the parser recurse once more until
// the level closes. Level 0 is the file's body.
type nesting struct {
	frames []int
	depth  int
	peak   int // the greatest depth so far
}

func (n *nesting) open() {
	n.frames = append(n.frames, 0)
	n.depth++
	n.peak = max(n.peak, n.depth)
}

func (n *nesting) operator() {
	n.frames[len(n.frames)-1]++
	n.depth++
	n.peak = max(n.peak, n.depth)
}

func (n *nesting) close() {
	if len(n.frames) > 1 {
		n.depth -= 1 + n.frames[len(n.frames)-1]
		n.frames = n.frames[:len(n.frames)-1]
	}
}

// newline ends an attribute of the file's body, and its operators with it.
func (n *nesting) newline() {
	if len(n.frames) == 1 {
		n.depth -= n.frames[0]
		n.frames[0] = 0
	}
}

// lexNestingHCL returns the offset of the first token nested deeper than
// limit, or -1, using the HCL lexer itself.
func lexNestingHCL(src []byte, limit int) int {
	tokens, _ := hclsyntax.LexConfig(src, "", hcl.InitialPos)
	n := nesting{frames: []int{0}}
	for _, tok := range tokens {
		switch tok.Type {
		case hclsyntax.TokenOBrace, hclsyntax.TokenOBrack, hclsyntax.TokenOParen,
			hclsyntax.TokenOQuote, hclsyntax.TokenOHeredoc,
			hclsyntax.TokenTemplateInterp, hclsyntax.TokenTemplateControl:
			n.open()
		case hclsyntax.TokenCBrace, hclsyntax.TokenCBrack, hclsyntax.TokenCParen,
			hclsyntax.TokenCQuote, hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateSeqEnd:
			n.close()
		case hclsyntax.TokenMinus, hclsyntax.TokenBang, hclsyntax.TokenQuestion:
			n.operator()
		case hclsyntax.TokenNewline:
			n.newline()
		case hclsyntax.TokenComment:
			// The parser reads a line comment, which holds its newline, as
			// a newline.
			if bytes.HasSuffix(tok.Bytes, []byte("\n")) {
				n.newline()
			}
		}
		if n.peak > limit {
			return tok.Range.Start.Byte
		}
	}
	return -1
}

// scanNestingHCL is lexNestingHCL without building tokens: it follows the
// lexer's modes (code, quoted string, heredoc, template sequence, comment)
// byte by byte, which costs a fraction of lexing a large plugs.hcl. It may
// count more operators than the lexer (a '-' inside an identifier or a
// number), never fewer levels. ok is false when it meets what it does not
// model exactly: a carriage return, bytes that are not UTF-8, a non-ASCII
// heredoc.
//
// With every > 0 it also returns splits, offsets where a line starts in
// the file's body, outside any bracket, string, heredoc, template or
// comment, each at least every bytes after the one before (and before the
// end): places where the file's items can be parsed apart. An item may
// span lines there (an operator ending a line is an error the parser
// reports; parseSplit then parses the whole file).
func scanNestingHCL(src []byte, limit, every int) (off int, splits []int, ok bool) {
	const (
		code = iota
		quoted
		heredoc
	)
	type mode struct {
		kind   int
		braces int    // code inside a template sequence: open braces in it
		marker []byte // heredoc: the closing marker
	}
	modes := []mode{{kind: code}}
	n := nesting{frames: []int{0}}
	last := 0 // the last split
	split := func(at int) {
		if every > 0 && len(modes) == 1 && len(n.frames) == 1 && at-last >= every && at < len(src) {
			splits = append(splits, at)
			last = at
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c >= 0x80 {
			// A valid UTF-8 sequence never holds an ASCII byte; the lexer
			// reads broken ones its own way.
			_, size := utf8.DecodeRune(src[i:])
			if size == 1 || modes[len(modes)-1].kind == heredoc {
				return -1, nil, false
			}
			i += size - 1
			continue
		}
		if c == '\r' {
			return -1, nil, false
		}
		top := &modes[len(modes)-1]
		switch top.kind {
		case code:
			switch {
			case c == '#' || c == '/' && i+1 < len(src) && src[i+1] == '/':
				for i < len(src) && src[i] != '\n' {
					i++
				}
				n.newline()
				split(i + 1)
			case c == '/' && i+1 < len(src) && src[i+1] == '*':
				// An unterminated /* is not a comment to the lexer.
				if end := bytes.Index(src[i+2:], []byte("*/")); end >= 0 {
					i += 2 + end + 1
				}
			case c == '\n':
				n.newline()
				split(i + 1)
			case c == '"':
				modes = append(modes, mode{kind: quoted})
				n.open()
			case c == '<' && i+1 < len(src) && src[i+1] == '<':
				j := i + 2
				if j < len(src) && src[j] == '-' {
					j++
				}
				k := j
				for k < len(src) && (isIdentByte(src[k]) || k > j && src[k] == '-') {
					k++
				}
				if k < len(src) && src[k] >= 0x80 {
					return -1, nil, false
				}
				if k > j && !isDigit(src[j]) && src[j] != '-' && k < len(src) && src[k] == '\n' {
					modes = append(modes, mode{kind: heredoc, marker: src[j:k]})
					n.open()
					i = k
					if end, ok := markerLine(src, k+1, src[j:k]); ok {
						modes = modes[:len(modes)-1]
						n.close()
						i = end - 1 // the newline after the marker is code
					}
				}
			case c == '(' || c == '[':
				n.open()
			case c == ')' || c == ']':
				n.close()
			case c == '{':
				top.braces++
				n.open()
			case c == '}':
				n.close()
				if len(modes) > 1 && top.braces == 0 {
					modes = modes[:len(modes)-1] // end of a template sequence
				} else {
					top.braces--
				}
			case c == '-' || c == '!' || c == '?':
				n.operator()
			}
		case quoted, heredoc:
			switch {
			case c == '\\' && top.kind == quoted:
				if i+1 < len(src) && src[i+1] != '\n' {
					i++
				}
			case c == '"' && top.kind == quoted:
				modes = modes[:len(modes)-1]
				n.close()
			case (c == '$' || c == '%') && i+2 < len(src) && src[i+1] == c && src[i+2] == '{':
				i += 2 // $${ and %%{ are literal
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == '{':
				i++
				modes = append(modes, mode{kind: code})
				n.open()
			case c == '\n' && top.kind == heredoc:
				if end, ok := markerLine(src, i+1, top.marker); ok {
					modes = modes[:len(modes)-1]
					n.close()
					i = end - 1 // the newline after the marker is code
				}
			}
		}
		if n.peak > limit {
			return i, nil, true
		}
	}
	return -1, splits, true
}

// markerLine reports whether the line starting at start holds only marker
// and spaces, and where its newline is. A heredoc line that begins a
// template sequence cannot match, as a marker holds no '$' or '%'.
func markerLine(src []byte, start int, marker []byte) (newline int, ok bool) {
	end := bytes.IndexByte(src[start:], '\n')
	if end < 0 {
		return 0, false
	}
	return start + end, bytes.Equal(bytes.TrimSpace(src[start:start+end]), marker)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isIdentByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '_'
}

// outsideJSONStrings calls at with the offset of each byte of the JSON
// source src that is outside a string, and goes on at the offset at
// returns (i+1, or past what it read; -1 stops). JSON has no comments, and
// its strings end at the first unescaped quote, so a scan of the bytes is
// exact.
func outsideJSONStrings(src []byte, at func(i int) int) {
	inString := false
	for i := 0; i >= 0 && i < len(src); {
		switch c := src[i]; {
		case inString && c == '\\':
			i += 2
		case c == '"':
			inString = !inString
			i++
		case inString:
			i++
		default:
			i = at(i)
		}
	}
}

// checkNestingJSON rejects JSON source nested deeper than maxNesting.
func checkNestingJSON(src []byte, filename string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	depth := 0
	outsideJSONStrings(src, func(i int) int {
		switch src[i] {
		case '[', '{':
			if depth++; depth > maxNesting {
				diags = tooDeep(filename, offsetPos(src, i))
				return -1
			}
		case ']', '}':
			depth = max(depth-1, 0)
		}
		return i + 1
	})
	return diags
}

// offsetPos is the line and column of byte offset off in src, counting
// columns in bytes: it is only used on hostile input, so precision about
// multi-byte characters does not matter.
func offsetPos(src []byte, off int) hcl.Pos {
	pos := hcl.Pos{Line: 1, Column: 1, Byte: off}
	for _, c := range src[:off] {
		if c == '\n' {
			pos.Line++
			pos.Column = 1
		} else {
			pos.Column++
		}
	}
	return pos
}
