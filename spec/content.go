package spec

import (
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// bodyContent is body.Content(schema), the hot path of decoding: for a
// native-syntax body that matches schema (every argument and block known,
// labels right, required arguments present) it builds the content directly
// from the syntax tree; hclsyntax's Content also copies the body to record
// what it consumed, and allocates a map per body for that. Anything else,
// and every body with a mistake, goes through Content so that the
// diagnostics are HCL's own.
func bodyContent(body hcl.Body, schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	return contentInto(body, schema, nil)
}

// content is bodyContent with the content, its attribute map and its block
// list reused from the decoder's earlier bodies, and the attributes and
// blocks themselves allocated a chunk at a time; release gives the
// content back once the body is decoded. Nothing may keep the content, its
// Attributes map or its Blocks slice beyond release; the *hcl.Attribute and
// *hcl.Block values in them are never reused and may be kept.
func (dc *decoder) content(body hcl.Body, schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	var c *hcl.BodyContent
	if n := len(dc.freeContent); n > 0 {
		c, dc.freeContent = dc.freeContent[n-1], dc.freeContent[:n-1]
	}
	return contentInto(body, schema, dc.withContent(c))
}

func (dc *decoder) release(c *hcl.BodyContent) {
	if c == nil || len(dc.freeContent) >= 16 {
		return
	}
	clear(c.Attributes)
	clear(c.Blocks)
	*c = hcl.BodyContent{Attributes: c.Attributes, Blocks: c.Blocks[:0]}
	dc.freeContent = append(dc.freeContent, c)
}

// withContent is the allocator contentInto uses: the decoder's chunks, and
// c (when not nil) for the content.
func (dc *decoder) withContent(c *hcl.BodyContent) *contentAlloc {
	dc.alloc.content, dc.alloc.chunked = c, true
	return &dc.alloc
}

// contentAlloc hands out the values contentInto builds. Its zero value
// allocates each one on its own.
type contentAlloc struct {
	content *hcl.BodyContent // reused, or nil
	chunked bool             // allocate attributes and blocks a chunk at a time
	attrs   []hcl.Attribute  // the rest of the current chunk
	blocks  []hcl.Block
	// the size of the last chunk of each
	attrChunk, blockChunk int
}

// nextChunk is how many attributes or blocks to allocate at once, after a
// chunk of n: 8 first (a manifest of its own has a dozen of each), twice as
// many each time after, up to 64 (a plugs.hcl has a dozen per plug).
func nextChunk(n int) int { return min(max(2*n, 8), 64) }

func (a *contentAlloc) attr() *hcl.Attribute {
	if !a.chunked {
		return new(hcl.Attribute)
	}
	if len(a.attrs) == 0 {
		a.attrChunk = nextChunk(a.attrChunk)
		a.attrs = make([]hcl.Attribute, a.attrChunk)
	}
	at := &a.attrs[0]
	a.attrs = a.attrs[1:]
	return at
}

func (a *contentAlloc) block() *hcl.Block {
	if !a.chunked {
		return new(hcl.Block)
	}
	if len(a.blocks) == 0 {
		a.blockChunk = nextChunk(a.blockChunk)
		a.blocks = make([]hcl.Block, a.blockChunk)
	}
	b := &a.blocks[0]
	a.blocks = a.blocks[1:]
	return b
}

func contentInto(body hcl.Body, schema *hcl.BodySchema, alloc *contentAlloc) (*hcl.BodyContent, hcl.Diagnostics) {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return body.Content(schema)
	}
	if alloc == nil {
		alloc = &contentAlloc{}
	}
	c := alloc.content
	if c == nil {
		c = &hcl.BodyContent{}
	}
	// Built as the body is checked against schema; a mismatch leaves it
	// to Content (c, not handed out, is reused next time).
	if len(sb.Attributes) > 0 && c.Attributes == nil {
		c.Attributes = make(hcl.Attributes, len(sb.Attributes))
	}
	for name, a := range sb.Attributes {
		if !hasAttr(schema, name) {
			clear(c.Attributes)
			return body.Content(schema)
		}
		at := alloc.attr()
		*at = hcl.Attribute{Name: a.Name, Expr: a.Expr, Range: a.SrcRange, NameRange: a.NameRange} // a.AsHCLAttribute()
		c.Attributes[name] = at
	}
	for _, as := range schema.Attributes {
		if as.Required {
			if _, ok := sb.Attributes[as.Name]; !ok {
				clear(c.Attributes)
				return body.Content(schema)
			}
		}
	}
	for _, b := range sb.Blocks {
		if n, ok := blockLabels(schema, b.Type); !ok || n != len(b.Labels) {
			clear(c.Attributes)
			clear(c.Blocks)
			c.Blocks = c.Blocks[:0]
			return body.Content(schema)
		}
		if c.Blocks == nil {
			c.Blocks = make(hcl.Blocks, 0, len(sb.Blocks))
		}
		hb := alloc.block()
		*hb = hcl.Block{Type: b.Type, Labels: b.Labels, Body: b.Body, // b.AsHCLBlock()
			DefRange: b.DefRange(), TypeRange: b.TypeRange, LabelRanges: b.LabelRanges}
		c.Blocks = append(c.Blocks, hb)
	}
	alloc.content = nil
	c.MissingItemRange = sb.MissingItemRange()
	return c, nil
}

func hasAttr(schema *hcl.BodySchema, name string) bool {
	for _, as := range schema.Attributes {
		if as.Name == name {
			return true
		}
	}
	return false
}

func blockLabels(schema *hcl.BodySchema, typ string) (int, bool) {
	for _, bs := range schema.Blocks {
		if bs.Type == typ {
			return len(bs.LabelNames), true
		}
	}
	return 0, false
}
