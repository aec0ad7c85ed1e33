// Package browsertest starts a headless Chromium (Debian's chromium
// package) for end-to-end tests of the dashboard, driven by chromedp. It
// owns the browser's flags and lifetime, nothing about what is tested.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium is where Debian installs the browser; $PLUGS_CHROMIUM overrides it.
const Chromium = "/usr/bin/chromium"

// New starts a fresh headless browser (its own profile in a temporary
// directory, no network services of its own) and returns a tab's context,
// ended when the test ends. Without a browser the test is skipped, or fails
// under CI, where scripts/test-deps.sh installs it.
func New(t testing.TB) context.Context {
	t.Helper()
	path := os.Getenv("PLUGS_CHROMIUM")
	if path == "" {
		path = Chromium
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no browser at %s (scripts/test-deps.sh installs Debian's chromium)", path)
		}
		t.Skipf("no browser at %s: run scripts/test-deps.sh as root", path)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	// Start the browser now, so that a test's own timeouts do not include it.
	if err := chromedp.Do(ctx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("start %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	return ctx
}

// Step bounds one step of a test: a browser that hangs fails the test
// instead of stalling the suite.
func Step(ctx context.Context, t testing.TB, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression in the page, bounded like Step.
func Eval[T any](ctx context.Context, t testing.TB, expr string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// WaitFor waits until a JavaScript expression is truthy in the page (it
// is polled at each animation frame), bounded like Step.
func WaitFor(ctx context.Context, t testing.TB, what, expr string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		_, err := chromedp.Run(sctx, chromedp.Poll[bool](expr))
		if err == nil {
			return
		}
		// A navigation destroys the page's context under the poll: poll
		// the new page.
		if sctx.Err() == nil && navigated(err) {
			continue
		}
		t.Fatalf("wait for %s (%s): %v", what, expr, err)
	}
}

// Click clicks the element a CSS selector finds, as a script would
// (element.click()), so that it works whatever covers the element.
func Click(ctx context.Context, t testing.TB, selector string) {
	t.Helper()
	WaitFor(ctx, t, selector, fmt.Sprintf(`document.querySelector(%q) !== null`, selector))
	Eval[bool](ctx, t, fmt.Sprintf(`document.querySelector(%q).click(), true`, selector))
}

// navigated reports whether err says the page changed under a call.
func navigated(err error) bool {
	for _, s := range []string{"Cannot find context", "context was destroyed", "navigated or closed"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}
