package browser

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/chromedp/chromedp"
)

// updateScreenshotsEnv names the variable that makes the tests write the
// README's screenshots into docs/screenshots instead of a temp directory.
const updateScreenshotsEnv = "IDP_UPDATE_SCREENSHOTS"

// screenshots saves full-page PNGs of the pages an agent arrives at, at
// desktop width and at a 375-pixel phone width.
type screenshots struct {
	dir   string
	taken []string
}

// screenshotDir is where this run writes: docs/screenshots when
// IDP_UPDATE_SCREENSHOTS=1 and update is allowed (one engine writes them,
// the pages being the same), a temp directory otherwise, so that a test run
// never changes the working tree.
func newScreenshots(t *testing.T, update bool) *screenshots {
	t.Helper()
	if update && os.Getenv(updateScreenshotsEnv) == "1" {
		_, file, _, _ := runtime.Caller(0)
		dir := filepath.Join(filepath.Dir(file), "..", "..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return &screenshots{dir: dir}
	}
	return &screenshots{dir: t.TempDir()}
}

// take saves name-desktop.png and name-phone.png of the current page, then
// puts the desktop viewport back.
func (s *screenshots) take(a *agent, name string) {
	a.t.Helper()
	for _, v := range []struct {
		suffix        string
		width, height int64
		opts          []chromedp.EmulateViewportOption
	}{
		{"desktop", desktopWidth, desktopHeight, nil},
		{"phone", phoneWidth, phoneHeight, []chromedp.EmulateViewportOption{chromedp.EmulateMobile}},
	} {
		ctx, cancel := context.WithTimeout(a.ctx, stepTimeout)
		err := chromedp.Do(ctx, chromedp.EmulateViewport(v.width, v.height, v.opts...))
		var png []byte
		if err == nil {
			png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		}
		cancel()
		if err != nil {
			a.fatalf("screenshot %s (%s): %v", name, v.suffix, err)
		}
		file := filepath.Join(s.dir, name+"-"+v.suffix+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			a.t.Fatal(err)
		}
		s.taken = append(s.taken, file)
	}
	a.do("restore the desktop viewport", chromedp.EmulateViewport(desktopWidth, desktopHeight))
}
