package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// axeVersion is the axe-core release the pages are checked with, pinned so
// that a new rule does not turn the build red on its own.
const axeVersion = "4.14.1"

// axe runs axe-core in the pages and collects what it checked.
type axe struct {
	source string // axe.min.js

	mu      sync.Mutex
	checked map[string]int // page path -> runs
	minor   map[string]int // rule id (impact) -> occurrences below serious
}

// loadAxe installs axe-core from the npm registry into the user's cache
// directory (once; later runs reuse it) and reads axe.min.js. Nothing is
// written to the repository. Without npm or the registry the test skips
// locally and fails under CI.
func loadAxe(t *testing.T) *axe {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "idp-e2e", "axe-core-"+axeVersion)
	script := filepath.Join(dir, "node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(script); err != nil {
		install(t, dir)
	}
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatalf("reading axe-core: %v", err)
	}
	return &axe{source: string(b), checked: map[string]int{}, minor: map[string]int{}}
}

// install runs npm into a fresh directory and renames it into place, so
// that two test processes installing at once never see half an install.
func install(t *testing.T, dir string) {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		missing(t, "npm is needed to install axe-core for the accessibility checks: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command(npm, "install", "--prefix", tmp, "--no-audit", "--no-fund",
		"--no-save", "--loglevel=error", "axe-core@"+axeVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		missing(t, "npm install axe-core@%s failed (is the npm registry reachable?): %v\n%s", axeVersion, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !exists(dir) {
		t.Fatalf("installing axe-core into %s: %v", dir, err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// violation is one axe rule broken on a page, with the elements at fault.
type violation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []any  `json:"target"`
		HTML    string `json:"html"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// runAxe is evaluated in the page: it injects nothing when axe is already
// there, runs every default rule on the whole document and returns the
// violations.
const runAxe = `axe.run(document, {resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations))`

// check runs axe-core on the page the agent is on and fails the test on any
// serious or critical violation, printing each one with its elements.
//
// The script goes in through the DevTools protocol (Runtime.evaluate), which
// the pages' Content-Security-Policy (no inline script) does not govern: the
// policy stays on, as agents get it.
func (x *axe) check(a *agent, path string) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](x.source)); err != nil {
		a.fatalf("injecting axe-core: %v", err)
	}
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](runAxe, chromedp.EvalAwaitPromise))
	if err != nil {
		a.fatalf("running axe-core: %v", err)
	}
	var vs []violation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		a.fatalf("axe-core result: %v", err)
	}
	var serious []string
	x.mu.Lock()
	x.checked[path]++
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			serious = append(serious, describeViolation(v))
			continue
		}
		x.minor[v.ID+" ("+v.Impact+")"] += len(v.Nodes)
	}
	x.mu.Unlock()
	if len(serious) > 0 {
		a.fatalf("axe-core: %d serious or critical violation(s) on %s:\n%s", len(serious), path, strings.Join(serious, "\n"))
	}
}

func describeViolation(v violation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  [%s] %s: %s", v.Impact, v.ID, v.Help)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n    %v %s\n      %s", n.Target, n.HTML, strings.ReplaceAll(n.Summary, "\n", "\n      "))
	}
	return b.String()
}

// report logs which pages were checked and the violations below serious.
func (x *axe) report(t *testing.T) {
	x.mu.Lock()
	defer x.mu.Unlock()
	t.Logf("axe-core %s: pages checked %v; below serious: %v", axeVersion, x.checked, x.minor)
}
