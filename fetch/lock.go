package fetch

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/plugs-dev/plugs/spec"
	"golang.org/x/text/unicode/norm"
)

// LockHeader opens every plugs.lock.hcl.
const LockHeader = "# This file is maintained automatically by \"plugs lock\".\n# Manual edits may be lost in future updates.\n"

// Lock resolves every plug of d and returns the new lock. An entry of old
// whose source and version still match plugs.hcl is kept as it is (its
// h1: hash upgraded to h2:), unless its plug is named in update; local
// folders and archives are always hashed again (what changed is logged: the
// content, or a hash edited by hand), archive URLs are kept like git. Resolved trees are brought into the store on the way.
func (s *Store) Lock(ctx context.Context, d *spec.Deployment, old *spec.Lock, update []string) (*spec.Lock, error) {
	force := map[string]bool{}
	for _, name := range update {
		if d.Plug(name) == nil {
			return nil, inputErrorf("-update %s: no such plug in %s", name, d.Filename)
		}
		force[name] = true
	}
	l := &spec.Lock{Plugs: map[string]*spec.LockedPlug{}}
	if old != nil {
		l.Filename = old.Filename
	}
	var mu sync.Mutex
	bar := s.progress("lock", len(d.Plugs))
	err := s.forEach(ctx, d.Plugs, func(ctx context.Context, _ int, p *spec.Plug) error {
		var e *spec.LockedPlug
		if old != nil {
			e = old.Plugs[p.Name]
		}
		src, err := parseSource(p.Source, d.BaseDir)
		if err != nil {
			return err
		}
		pinned := src.kind == kindGit || src.kind == kindRemoteArchive // kept unless -update
		switch old := e; {
		case force[p.Name] || !pinned || staleReason(p, e) != "":
			if e, err = s.resolve(ctx, d, p); err != nil {
				return err
			}
			if old != nil && !force[p.Name] && staleReason(p, old) == "" && old.Hash != e.Hash {
				switch {
				case editedLocalHash(old) != "":
					s.log.Warn("lock entry edited by hand: rewritten from the content", "plug", p.Name, "problem", editedLocalHash(old), "hash", e.Hash)
				case hashAlgo(old.Hash) == hashH1:
					s.log.Warn("upgraded the lock hash from h1: to h2: (h2 also covers executable bits); commit plugs.lock.hcl", "plug", p.Name, "old", old.Hash, "new", e.Hash)
				default:
					s.log.Info("local source changed", "plug", p.Name, "old", old.Hash, "new", e.Hash)
				}
			}
		case src.kind != kindGit && editedLocalHash(e) != "":
			s.log.Warn("lock entry edited by hand: rewriting it from the content", "plug", p.Name, "problem", editedLocalHash(e))
			if e, err = s.resolve(ctx, d, p); err != nil {
				return err
			}
		case hashAlgo(e.Hash) == hashH1:
			m, _, err := s.ensureTree(ctx, p, src, e, nil)
			if err != nil {
				return err
			}
			if e, _, err = s.upgradeHash(ctx, d, p, src, e, m); err != nil {
				return err
			}
		}
		mu.Lock()
		l.Plugs[p.Name] = e
		mu.Unlock()
		bar.step(p.Name + " " + describe(e))
		return nil
	})
	bar.finish()
	if err != nil {
		return nil, err
	}
	return l, nil
}

// FormatLock renders a lock as plugs.lock.hcl: the header, then one block per
// plug sorted by name, each as hclwrite writes it (appendLockBlock). Equal
// locks give equal bytes. TestFormatLockBlockByBlock holds it to hclwrite
// formatting the whole file at once.
func FormatLock(l *spec.Lock) []byte {
	names := make([]string, 0, len(l.Plugs))
	for n := range l.Plugs {
		names = append(names, n)
	}
	sort.Strings(names)
	b := make([]byte, 0, len(LockHeader)+1+len(names)*256)
	b = append(b, LockHeader...)
	b = append(b, '\n')
	for i, n := range names {
		if i > 0 {
			b = append(b, '\n')
		}
		b = appendLockBlock(b, n, l.Plugs[n])
	}
	return b
}

// appendLockBlock appends the plug block of entry e named n as hclwrite
// formats it (a quoted label, the attributes' "=" aligned, strings escaped
// and NFC-normalized as cty.StringVal and TokensForValue do), written
// directly: hclwrite's syntax tree for a lock of 1,000 plugs took 34-40 ms,
// a daemon's lock write after each reconcile that fetched a plug (issue
// 17). TestFormatLockMatchesHCLWrite holds the two equal over odd strings.
func appendLockBlock(b []byte, n string, e *spec.LockedPlug) []byte {
	type attr struct{ name, value string }
	var all [6]attr
	attrs := append(all[:0], attr{"source", redact(e.Source)})
	if e.Constraint != "" {
		attrs = append(attrs, attr{"constraint", e.Constraint})
	}
	if e.Version != "" {
		attrs = append(attrs, attr{"version", e.Version})
	}
	attrs = append(attrs, attr{"revision", e.Revision}, attr{"hash", e.Hash})
	if e.SHA256 != "" {
		attrs = append(attrs, attr{"sha256", e.SHA256})
	}
	width := 0
	for _, a := range attrs {
		width = max(width, len(a.name))
	}
	b = append(b, `plug "`...)
	b = appendQuotedLit(b, n)
	b = append(b, "\" {\n"...)
	for _, a := range attrs {
		b = append(b, "  "...)
		b = append(b, a.name...)
		for range width - len(a.name) {
			b = append(b, ' ')
		}
		b = append(b, ` = "`...)
		b = appendQuotedLit(b, a.value)
		b = append(b, "\"\n"...)
	}
	return append(b, "}\n"...)
}

// appendQuotedLit appends s as the inside of an HCL quoted string, as
// hclwrite.TokensForValue(cty.StringVal(s)) writes it.
func appendQuotedLit(b []byte, s string) []byte {
	s = norm.NFC.String(s) // what cty.StringVal does
	for i, r := range s {
		switch r {
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '$', '%':
			b = append(b, byte(r))
			if i+1 < len(s) && s[i+1] == '{' {
				b = append(b, byte(r)) // $${ and %%{: not a template
			}
		default:
			switch {
			case !unicode.IsPrint(r) && r < 65536:
				b = fmt.Appendf(b, "\\u%04x", r)
			case !unicode.IsPrint(r):
				b = fmt.Appendf(b, "\\U%08x", r)
			default:
				b = utf8.AppendRune(b, r)
			}
		}
	}
	return b
}

// WriteLock writes l to filename atomically.
func WriteLock(filename string, l *spec.Lock) error {
	return writeFileAtomic(filename, FormatLock(l), 0o644)
}
