package spec

import (
	"crypto/sha256"
	"path/filepath"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// LockCache remembers the plug blocks of the lock files it decoded, by
// their bytes, so that a daemon that reads its lock on every reconcile
// parses only the entries that changed since the last one (issue 17: at
// 1,000 plugs the lock is 200 KB, and its parse cost as much as plugs.hcl's).
//
// A lock is data: a plug block's entry depends on nothing but its own
// bytes (no variable, local or function reaches a lock) and, for its
// DeclRange, on where the block starts. The file is cut where parseSplit
// cuts it, at line starts between top-level items; each piece is decoded
// alone from line 1, its DeclRange kept relative to the piece and moved to
// the piece's place in the file when used. Whenever any piece has a
// diagnostic of any severity, or two pieces name the same plug, the whole
// file is decoded as ParseLock does, so that every diagnostic is its own;
// FuzzLockCache holds the two to the same result.
//
// It keeps the entries of the last file only, by the sha256 of their bytes
// (~350 bytes an entry, mostly strings the lock it returns shares), never a
// syntax tree. It is safe for concurrent use.
type LockCache struct {
	mu       sync.Mutex
	filename string
	pieces   map[[sha256.Size]byte]lockPiece // by the sha256 of the piece's bytes
}

// lockPiece is a decoded piece: nil plug for a piece of comments or blank
// lines; the plug's DeclRange is relative to the piece's first byte.
type lockPiece struct{ plug *LockedPlug }

// LoadLockCached is LoadLock through c (nil: LoadLock), and also returns the
// bytes it decoded. On a hit the lock file's syntax tree is built only if
// Files asks for it.
func (p *Parser) LoadLockCached(filename string, c *LockCache) (*Lock, []byte, hcl.Diagnostics) {
	src, diags := p.readFile(filename, "lock file")
	if diags.HasErrors() {
		return nil, nil, diags
	}
	if c != nil {
		if l, ok := c.decode(p, src, filename); ok {
			if p.lazy == nil {
				p.lazy = map[string][]byte{}
			}
			p.lazy[filename] = src
			return l, src, nil
		}
	}
	l, diags := p.ParseLock(src, filename)
	return l, src, diags
}

// decode decodes src piece by piece, false when ParseLock must (see LockCache).
func (c *LockCache) decode(p *Parser, src []byte, filename string) (*Lock, bool) {
	if int64(len(src)) > MaxFileBytes {
		return nil, false
	}
	diags, splits := checkNestingSplitHCL(src, filename, 1)
	if diags != nil || len(splits) == 0 || checkNumbersHCL(src, filename) != nil {
		return nil, false // ParseLock reports it
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.pieces
	if c.filename != filename {
		old = nil // DeclRange and the decoder's base folder name the file
	}
	next := make(map[[sha256.Size]byte]lockPiece, len(splits)+1)
	l := &Lock{Filename: filename, Plugs: make(map[string]*LockedPlug, len(splits)/2+1)}
	spans, ok := spansOf(src, splits)
	if !ok {
		return nil, false
	}
	type piece struct {
		span
		key [sha256.Size]byte
		lp  lockPiece
	}
	pieces := make([]piece, len(spans))
	var missed []int
	for i, sp := range spans {
		pc := &pieces[i]
		pc.span, pc.key = sp, sha256.Sum256(src[sp.start:sp.end])
		var cached bool
		if pc.lp, cached = old[pc.key]; !cached {
			missed = append(missed, i)
		}
	}
	// The pieces not seen before are decoded in parallel: all of them at
	// a daemon's start (1,000 entries, ~40 ms on one core).
	ok = eachParallel(len(missed), parallelLockPieces, func(k int) bool {
		pc := &pieces[missed[k]]
		var ok bool
		pc.lp, ok = decodeLockPiece(p, src[pc.start:pc.end], filename)
		return ok
	})
	if !ok {
		return nil, false
	}
	for _, pc := range pieces {
		next[pc.key] = pc.lp
		if lp := pc.lp.plug; lp != nil {
			if _, dup := l.Plugs[lp.Name]; dup {
				return nil, false
			}
			e := *lp
			e.DeclRange = shiftRange(e.DeclRange, pc.pos)
			l.Plugs[e.Name] = &e
		}
	}
	c.filename, c.pieces = filename, next
	return l, true
}

// decodeLockPiece decodes one piece of a lock file as if it started the
// file; false when it has any diagnostic or more than one block.
func decodeLockPiece(p *Parser, piece []byte, filename string) (lockPiece, bool) {
	f, diags := hclsyntax.ParseConfig(piece, filename, hcl.InitialPos)
	if len(diags) > 0 {
		return lockPiece{}, false
	}
	content, diags := bodyContent(f.Body, lockFileSchema)
	if len(diags) > 0 || len(content.Blocks) > 1 {
		return lockPiece{}, false
	}
	if len(content.Blocks) == 0 {
		return lockPiece{}, true
	}
	dc := &decoder{p: p, baseDir: filepath.Dir(filename)}
	lp, diags := dc.lockedPlug(content.Blocks[0])
	if len(diags) > 0 {
		return lockPiece{}, false
	}
	return lockPiece{plug: lp}, true
}

// parallelLockPieces is how many entries each decoding goroutine takes at
// least (each is ~40 µs).
const parallelLockPieces = 32

// shiftRange moves r, a range in a piece that starts a line, to the piece's
// place at. Columns count from the line's start, which the piece's is.
func shiftRange(r hcl.Range, at hcl.Pos) hcl.Range {
	move := func(p hcl.Pos) hcl.Pos {
		return hcl.Pos{Line: p.Line + at.Line - 1, Column: p.Column, Byte: p.Byte + at.Byte}
	}
	r.Start, r.End = move(r.Start), move(r.End)
	return r
}
