package fetch

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/mattn/go-isatty"
)

// progress shows how far an operation over n plugs is: a bar redrawn in
// place on a terminal, one plain line per plug otherwise, nothing when the
// store has no Progress writer. A plug with nothing to do (skip: a tree
// already in the store) counts towards the total without a line of its own.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	what    string
	total   int
	done    int
	printed bool
}

func (s *Store) progress(what string, total int) *progress {
	p := &progress{w: s.opts.Progress, what: what, total: total}
	if f, ok := p.w.(*os.File); ok {
		p.tty = isatty.IsTerminal(f.Fd())
	}
	return p
}

func (p *progress) step(msg string) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.printed = true
	if !p.tty {
		fmt.Fprintf(p.w, "%s [%d/%d] %s\n", p.what, p.done, p.total, msg)
		return
	}
	const width = 30
	filled := width * p.done / max(p.total, 1)
	fmt.Fprintf(p.w, "\r\x1b[K%s [%s%s] %d/%d %s", p.what,
		strings.Repeat("=", filled), strings.Repeat(" ", width-filled), p.done, p.total, msg)
}

// skip counts a plug that needed no work, silently.
func (p *progress) skip() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
}

func (p *progress) finish() {
	if p.w == nil || !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.printed {
		fmt.Fprintln(p.w)
	}
}
