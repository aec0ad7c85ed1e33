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

// content is bodyContent with an attribute map reused from the decoder's
// earlier bodies; release gives it back once the body is decoded (nothing
// may keep content.Attributes, the map, beyond that; the attributes in it
// are not reused).
func (dc *decoder) content(body hcl.Body, schema *hcl.BodySchema) (*hcl.BodyContent, hcl.Diagnostics) {
	var m hcl.Attributes
	if n := len(dc.freeAttrs); n > 0 {
		m, dc.freeAttrs = dc.freeAttrs[n-1], dc.freeAttrs[:n-1]
	}
	return contentInto(body, schema, m)
}

func (dc *decoder) release(c *hcl.BodyContent) {
	if c != nil && c.Attributes != nil && len(dc.freeAttrs) < 16 {
		clear(c.Attributes)
		dc.freeAttrs = append(dc.freeAttrs, c.Attributes)
	}
}

func contentInto(body hcl.Body, schema *hcl.BodySchema, attrs hcl.Attributes) (*hcl.BodyContent, hcl.Diagnostics) {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return body.Content(schema)
	}
	if attrs == nil && len(sb.Attributes) > 0 {
		attrs = make(hcl.Attributes, len(sb.Attributes))
	}
	for name, a := range sb.Attributes {
		if !hasAttr(schema, name) {
			return body.Content(schema)
		}
		attrs[name] = a.AsHCLAttribute()
	}
	for _, as := range schema.Attributes {
		if as.Required {
			if _, ok := sb.Attributes[as.Name]; !ok {
				return body.Content(schema)
			}
		}
	}
	var blocks hcl.Blocks
	if len(sb.Blocks) > 0 {
		blocks = make(hcl.Blocks, 0, len(sb.Blocks))
	}
	for _, b := range sb.Blocks {
		if n, ok := blockLabels(schema, b.Type); !ok || n != len(b.Labels) {
			return body.Content(schema)
		}
		blocks = append(blocks, b.AsHCLBlock())
	}
	return &hcl.BodyContent{Attributes: attrs, Blocks: blocks, MissingItemRange: sb.MissingItemRange()}, nil
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
