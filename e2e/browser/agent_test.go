package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// stepTimeout bounds one step (a page load, a lookup): a broken page fails
// the step with what the browser shows instead of hanging the test.
const stepTimeout = 15 * time.Second

// Desktop and phone viewports.
const (
	desktopWidth, desktopHeight = 1280, 800
	phoneWidth, phoneHeight     = 375, 667
)

// Accessible roles, as Chromium's accessibility tree computes them.
const (
	roleTextbox = "textbox"
	roleButton  = "button"
	roleLink    = "link"
	roleHeading = "heading"
	roleImage   = "image"
)

// agent is a person in front of one browser tab: it reads pages, finds
// fields by the label next to them and buttons or links by their text, the
// way a screen reader user does, through the browser's accessibility tree.
// Every page of the provider the browser loads is checked with axe-core.
type agent struct {
	t   *testing.T
	ctx context.Context // the tab
	s   *stack
	// shots, when set, receives a screenshot of every page arrived at.
	shots *screenshots
}

func newAgent(t *testing.T, s *stack) *agent {
	t.Helper()
	a := &agent{t: t, ctx: newTab(t, s.chrome), s: s}
	a.do("set the desktop viewport", chromedp.EmulateViewport(desktopWidth, desktopHeight))
	return a
}

// do runs steps within stepTimeout and fails the test with what the browser
// shows when one fails.
func (a *agent) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		a.fatalf("%s: %v", what, err)
	}
}

// navigates runs a step that makes the browser load a new page (a click, a
// key press) and waits until the final page of the redirects has loaded;
// a page of the provider is then checked with axe-core.
func (a *agent) navigates(what string, step chromedp.Action[chromedp.Void]) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.RunResponse(ctx, step); err != nil {
		a.fatalf("%s: %v", what, err)
	}
	if u := a.location(); origin(u) == a.s.idp.URL {
		a.s.axe.check(a, u.Path)
	}
}

// origin is scheme://host of an address.
func origin(u *url.URL) string { return u.Scheme + "://" + u.Host }

// samePage runs a step that navigates within the page (a link to an
// anchor) and waits until the browser has moved to the anchor.
func (a *agent) samePage(what string, step chromedp.Action[chromedp.Void]) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.NavigatedWithinDocument, nil, step)); err != nil {
		a.fatalf("%s: %v", what, err)
	}
}

// fatalf fails the test, saying where the browser is and what it shows.
func (a *agent) fatalf(format string, args ...any) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	a.t.Fatalf("%s\n  browser at: %s\n  page text: %.1500s", fmt.Sprintf(format, args...), loc, text)
}

// open types an address in the address bar.
func (a *agent) open(address string) {
	a.t.Helper()
	a.navigates("open "+address, chromedp.Navigate(address))
}

// byName finds elements by accessible role and name in the accessibility
// tree, the way assistive technology finds them: a field by its label, a
// button or link by its text. Nodes the tree ignores (hidden) never match.
func byName(role, name string) chromedp.QueryOption {
	return chromedp.ByFunc(func(ctx context.Context, t *chromedp.Target, root *chromedp.Node) ([]cdp.NodeID, error) {
		res, err := cdp.Call(ctx, t, accessibility.QueryAXTree, accessibility.QueryAXTreeParams{
			NodeID: root.NodeID, AccessibleName: name, Role: role,
		})
		if err != nil {
			return nil, err
		}
		var backend []cdp.BackendNodeID
		for _, n := range res.Nodes {
			if !n.Ignored && n.BackendDOMNodeID != 0 {
				backend = append(backend, n.BackendDOMNodeID)
			}
		}
		if len(backend) == 0 {
			return nil, nil
		}
		pushed, err := cdp.Call(ctx, t, dom.PushNodesByBackendIDsToFrontend,
			dom.PushNodesByBackendIDsToFrontendParams{BackendNodeIDs: backend})
		if err != nil {
			return nil, err
		}
		return pushed.NodeIDs, nil
	})
}

// named is the query options of an element with this role and name: found
// through the accessibility tree, visible, retried every 20ms.
func named(role, name string) []chromedp.QueryOption {
	return []chromedp.QueryOption{byName(role, name), chromedp.NodeVisible, chromedp.RetryInterval(20 * time.Millisecond)}
}

// waitNamed waits until the element with this role and name is visible.
func waitNamed(role, name string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(label(role, name), named(role, name)...)
}

// label is the selector text of an element in error messages.
func label(role, name string) string { return role + " « " + name + " »" }

// fill types value into the field labelled fieldLabel, replacing what it
// holds.
func (a *agent) fill(fieldLabel, value string) {
	a.t.Helper()
	opts := named(roleTextbox, fieldLabel)
	a.do("fill "+label(roleTextbox, fieldLabel),
		chromedp.Clear(label(roleTextbox, fieldLabel), opts...),
		chromedp.SendKeys(label(roleTextbox, fieldLabel), value, opts...))
}

// value is what the field labelled fieldLabel holds.
func (a *agent) value(fieldLabel string) string {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Value(label(roleTextbox, fieldLabel), named(roleTextbox, fieldLabel)...))
	if err != nil {
		a.fatalf("read %s: %v", label(roleTextbox, fieldLabel), err)
	}
	return v
}

// press clicks the button with this text and waits for the next page.
func (a *agent) press(button string) {
	a.t.Helper()
	a.navigates("press "+label(roleButton, button),
		chromedp.Click(label(roleButton, button), named(roleButton, button)...))
}

// follow clicks the link with this text and waits for the next page.
func (a *agent) follow(link string) {
	a.t.Helper()
	a.navigates("follow "+label(roleLink, link),
		chromedp.Click(label(roleLink, link), named(roleLink, link)...))
}

// location is the address of the page shown.
func (a *agent) location() *url.URL {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.ctx, stepTimeout)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		a.fatalf("location: %v", err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		a.fatalf("location %q: %v", loc, err)
	}
	return u
}

// history is the tab's history up to the current page: the pages the
// browser committed (a redirect is not a page).
func (a *agent) history() []string {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.ctx, stepTimeout)
	defer cancel()
	h, err := chromedp.Run(ctx, chromedp.NavigationEntries())
	if err != nil {
		a.fatalf("history: %v", err)
	}
	var urls []string
	for _, e := range h.Entries[:h.CurrentIndex+1] {
		urls = append(urls, e.URL)
	}
	return urls
}

// text is the page's text as rendered (innerText: what is visible).
func (a *agent) text() string {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		a.fatalf("page text: %v", err)
	}
	return s
}

// sees asserts that the page shows each text.
func (a *agent) sees(texts ...string) {
	a.t.Helper()
	page := a.text()
	for _, s := range texts {
		if !strings.Contains(page, s) {
			a.fatalf("the page does not show %q", s)
		}
	}
}

// doesNotSee asserts that the page shows none of the texts.
func (a *agent) doesNotSee(texts ...string) {
	a.t.Helper()
	page := a.text()
	for _, s := range texts {
		if strings.Contains(page, s) {
			a.fatalf("the page shows %q", s)
		}
	}
}

// onProvider asserts that the browser shows the provider's page at path
// with this main heading and title, and takes its screenshots when asked to
// (shot is the file name, "" for none).
func (a *agent) onProvider(path, heading, title, shot string) {
	a.t.Helper()
	if u := a.location(); origin(u) != a.s.idp.URL || u.Path != path {
		a.fatalf("expected the provider's page %s, browser at %s", path, u)
	}
	a.do("wait for the heading « "+heading+" »", waitNamed(roleHeading, heading))
	ctx, cancel := context.WithTimeout(a.ctx, stepTimeout)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		a.fatalf("title: %v", err)
	}
	if got != title {
		a.fatalf("title %q, want %q", got, title)
	}
	if a.shots != nil && shot != "" {
		a.shots.take(a, shot)
	}
}

// inApp asserts that the browser ended up in the relying application,
// logged in as email with a verified ID token.
func (a *agent) inApp(app *relyingApp, email string) {
	a.t.Helper()
	if u := a.location(); origin(u) != app.URL || u.Path != "/callback" {
		a.fatalf("expected the callback of %s, browser at %s (application failures: %v)", app.Name, u, app.failures())
	}
	a.sees("Connecté : " + email)
	if len(app.loginsOf(email)) == 0 {
		a.fatalf("%s shows the login but recorded no verified ID token for %s", app.Name, email)
	}
}

// axNode is the accessibility node of the element found by role and name.
func (a *agent) axNode(role, name string) *accessibility.Node {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.ctx, stepTimeout)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.QueryAfter(label(role, name),
		func(ctx context.Context, t *chromedp.Target, nodes []*chromedp.Node) (*accessibility.Node, error) {
			return axNodeOf(ctx, t, nodes[0])
		}, named(role, name)...))
	if err != nil {
		a.fatalf("accessibility node of %s: %v", label(role, name), err)
	}
	return n
}

// fieldError asserts that the field labelled fieldLabel is marked invalid
// and that a screen reader reading it hears message (the error is part of
// its accessible description), and that the page shows message.
func (a *agent) fieldError(fieldLabel, message string) {
	a.t.Helper()
	n := a.axNode(roleTextbox, fieldLabel)
	if d := axString(n.Description); !strings.Contains(d, message) {
		a.fatalf("field « %s »: description %q does not carry the error %q", fieldLabel, d, message)
	}
	if !axInvalid(n) {
		a.fatalf("field « %s » is not marked invalid", fieldLabel)
	}
	a.sees(message)
}

// noFieldError asserts that the field labelled fieldLabel is not invalid.
func (a *agent) noFieldError(fieldLabel string) {
	a.t.Helper()
	if axInvalid(a.axNode(roleTextbox, fieldLabel)) {
		a.fatalf("field « %s » is marked invalid", fieldLabel)
	}
}

// axString decodes a string accessibility value ("" when absent).
func axString(v *accessibility.Value) string {
	if v == nil || len(v.Value) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal([]byte(v.Value), &s); err != nil {
		return string(v.Value)
	}
	return s
}

// axInvalid reports the node's invalid state (aria-invalid).
func axInvalid(n *accessibility.Node) bool {
	for _, p := range n.Properties {
		if p.Name == accessibility.PropertyNameInvalid {
			s := axString(p.Value)
			return s != "" && s != "false"
		}
	}
	return false
}

// focused is the role and accessible name of the element that has the
// keyboard focus (document.activeElement), as the accessibility tree
// computes them: what a screen reader announces after Tab.
func (a *agent) focused() (role, name string) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(a.ctx, stepTimeout)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.QueryAfter(chromedp.JSPath("document.activeElement"),
		func(ctx context.Context, t *chromedp.Target, nodes []*chromedp.Node) (*accessibility.Node, error) {
			return axNodeOf(ctx, t, nodes[0])
		}))
	if err != nil {
		a.fatalf("focused element: %v", err)
	}
	return axString(n.Role), axString(n.Name)
}

// axNodeOf is the accessibility node of a DOM node.
func axNodeOf(ctx context.Context, t *chromedp.Target, node *chromedp.Node) (*accessibility.Node, error) {
	res, err := cdp.Call(ctx, t, accessibility.GetPartialAXTree, accessibility.GetPartialAXTreeParams{
		BackendNodeID: node.BackendNodeID, FetchRelatives: new(false),
	})
	if err != nil {
		return nil, err
	}
	for _, n := range res.Nodes {
		if n.BackendDOMNodeID == node.BackendNodeID {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no accessibility node for %s", node.LocalName)
}
