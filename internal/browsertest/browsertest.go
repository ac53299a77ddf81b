// Package browsertest drives the pages onair serves (/live/, /analytics/)
// in a headless Chromium for tests: one way to start the browser and one
// way to wait on the page.
package browsertest

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where scripts/setup.sh installs Chromium.
const ChromiumPath = "/usr/bin/chromium"

// waitTimeout bounds one WaitJS: a page that has not got there by then
// will not.
const waitTimeout = 20 * time.Second

// Start starts a headless Chromium with a profile of its own and returns a
// context for a tab of it; the browser stops when the test ends.
func Start(t testing.TB) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath),
		chromedp.NoSandbox, chromedp.DisableGPU,
		// nothing in the background: the tests' machine is small and shared
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: cannot start %s: %v", ChromiumPath, err)
	}
	return ctx
}

// WaitJS polls the JavaScript condition cond in the page of ctx until it is
// true, for at most 20 s (less if ctx ends sooner), and otherwise fails the
// test naming what it waited for and showing the page's text.
func WaitJS(t testing.TB, ctx context.Context, cond, what string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		page, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("waiting for %s (%s): %v; page:\n%s", what, cond, err, page)
	}
}
