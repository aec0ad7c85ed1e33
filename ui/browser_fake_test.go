package ui

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	bt "github.com/plugs-dev/plugs/internal/browsertest"
)

// TestBrowserFake drives the pages in Chromium against the fake backend:
// the scripts load under the CSP, the filter narrows the table without a
// reload, a crash arrives over the event stream, a confirmed restart works.
func TestBrowserFake(t *testing.T) {
	h := newHarness(t, 40)
	ctx := bt.New(t)
	var errs []string
	chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			errs = append(errs, e.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value))
				}
				errs = append(errs, strings.Join(parts, " "))
			}
		}
	})

	bt.Step(ctx, t, "open instances", chromedp.Navigate(h.srv.URL+"/instances"))
	bt.WaitFor(ctx, t, "the event stream", `document.getElementById("conn").dataset.state === "on"`)
	if n := bt.Eval[int](ctx, t, `document.querySelectorAll("#rows tr[id]").length`); n != 40 {
		t.Fatalf("%d rows, want 40", n)
	}
	// Mark the document: a reload would lose the mark.
	bt.Eval[bool](ctx, t, `window.plugsMark = true`)

	bt.Step(ctx, t, "type a filter", chromedp.SendKeys(chromedp.CSS("#q"), "plug-07"))
	bt.WaitFor(ctx, t, "the filtered table", `document.querySelectorAll("#rows tr[id]").length === 4`)
	if loc := bt.Eval[string](ctx, t, `location.search`); !strings.Contains(loc, "q=plug-07") {
		t.Errorf("location after filtering: %q", loc)
	}

	id := InstanceID{Plug: "plug-07", Instance: "inst-0017"}
	row := domID("i-", id)
	before := bt.Eval[string](ctx, t, fmt.Sprintf(`document.getElementById(%q).dataset.pid`, row))
	if err := h.f.crash(id, "SIGSEGV"); err != nil {
		t.Fatal(err)
	}
	h.s.Notify()
	bt.WaitFor(ctx, t, "the crash in the row", fmt.Sprintf(`document.getElementById(%q).textContent.includes("killed by SIGSEGV")`, row))
	after := bt.Eval[string](ctx, t, fmt.Sprintf(`document.getElementById(%q).dataset.pid`, row))
	if after == before {
		t.Errorf("pid still %s after the crash", after)
	}
	if !bt.Eval[bool](ctx, t, `window.plugsMark === true`) {
		t.Error("the page reloaded")
	}

	// Sort by PID, descending, by keyboard-reachable header links.
	bt.Click(ctx, t, `thead a[href*="sort=pid"]`)
	bt.WaitFor(ctx, t, "sorted", `document.querySelector('th[aria-sort]') && document.querySelector('th[aria-sort]').textContent.includes("PID")`)

	// A confirmed restart from the instance page.
	bt.Step(ctx, t, "open the instance", chromedp.Navigate(h.srv.URL+instanceHref(id)))
	bt.Click(ctx, t, `a[data-action="restart"]`)
	bt.Click(ctx, t, `form[method=post] button[type=submit]`)
	bt.WaitFor(ctx, t, "the notice", `document.querySelector(".notice") && document.querySelector(".notice").textContent.includes("restarted")`)
	h.f.mu.Lock()
	restarts := append([]InstanceID(nil), h.f.restarts...)
	h.f.mu.Unlock()
	if len(restarts) != 1 || restarts[0] != id {
		t.Errorf("restarted %v", restarts)
	}
	if html := bt.Eval[string](ctx, t, `document.documentElement.outerHTML`); strings.Contains(html, plantedSecret) {
		t.Error("the planted secret is in the page")
	}
	// Every page: one h1, a main landmark, labelled controls, captioned
	// tables, named links and buttons; the first Tab reaches the skip link.
	for _, path := range []string{"/", "/instances", instanceHref(id), instanceHref(id) + "/kill", "/plugins", "/plan", "/history"} {
		bt.Step(ctx, t, path, chromedp.Navigate(h.srv.URL+path))
		problems := bt.Eval[[]string](ctx, t, `(() => {
			const p = [];
			if (document.querySelectorAll("h1").length !== 1) p.push("h1 count " + document.querySelectorAll("h1").length);
			if (!document.querySelector("main")) p.push("no main");
			for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
				if (!(el.labels && el.labels.length) && !el.getAttribute("aria-label")) p.push("unlabelled " + el.outerHTML);
			}
			for (const tb of document.querySelectorAll("table")) if (!tb.querySelector("caption")) p.push("table without caption");
			for (const el of document.querySelectorAll("a, button")) if (!el.textContent.trim() && !el.getAttribute("aria-label")) p.push("unnamed " + el.outerHTML);
			return p;
		})()`)
		for _, p := range problems {
			t.Errorf("%s: %s", path, p)
		}
	}
	bt.Step(ctx, t, "tab", chromedp.Navigate(h.srv.URL+"/instances"), chromedp.KeyEvent("\t"))
	if got := bt.Eval[string](ctx, t, `document.activeElement.className`); got != "skip" {
		t.Errorf("the first Tab focuses %q, not the skip link", got)
	}
	// htmx logs a missing out-of-band target as an error; none is expected here.
	for _, e := range errs {
		t.Errorf("browser error: %s", e)
	}
}
