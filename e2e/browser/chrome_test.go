package browser

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// inCI: under CI every missing tool is a failure, never a skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// missing skips the test locally and fails it under CI.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if inCI() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// chromiumPath finds Debian's Chromium (CHROMIUM_PATH overrides it).
func chromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		missing(t, "chromium is not installed (apt-get install -y chromium; .ci/run installs it): %v", err)
	}
	return p
}

// startChromium starts one headless Chromium for the whole test, with an
// empty profile and nothing that would try to reach the internet (this
// machine has none): the flags the browser tests are specified with, no
// more. The returned context is the browser's; journeys open their own
// isolated browser contexts in it (newTab).
func startChromium(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // waits for the browser process to exit
	})
	// The first Do starts the browser with a context that has no deadline,
	// so that the browser lives as long as the test.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("starting chromium (%s): %v", path, err)
	}
	return browserCtx
}

// newTab opens a tab in a new browser context: its own cookies and storage,
// as a separate private window would have, closed when the test ends.
func newTab(t *testing.T, browserCtx context.Context) context.Context {
	t.Helper()
	tabCtx, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(tabCtx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return tabCtx
}
