package cluster

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/caf-extranet/idp/e2e/htmlq"
)

// browser is one person's browser: one cookie jar for the public issuer,
// whichever instance the load balancer picks for each request. It never
// follows redirects by itself, so that the test chooses the instance of
// every step.
type browser struct {
	t   *testing.T
	c   *cluster
	jar http.CookieJar
}

func (c *cluster) newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: c, jar: jar}
}

// page is a response as the browser saw it.
type page struct {
	t      *testing.T
	url    *url.URL
	status int
	header http.Header
	body   string
	doc    *html.Node
}

// location is the redirect's target, resolved against the page's URL.
func (p *page) location() *url.URL {
	p.t.Helper()
	loc := p.header.Get("Location")
	if loc == "" {
		p.t.Fatalf("%s answered %d without a redirect: %.800s", p.url, p.status, p.text())
	}
	u, err := p.url.Parse(loc)
	if err != nil {
		p.t.Fatal(err)
	}
	return u
}

// text is the page's visible text, whitespace folded.
func (p *page) text() string {
	if p.doc == nil {
		return p.body
	}
	var sb strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "style" || n.Data == "script") {
			return
		}
		if n.Type == html.TextNode {
			sb.WriteString(n.Data + " ")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(p.doc)
	return strings.Join(strings.Fields(sb.String()), " ")
}

func (p *page) mustContain(s string) {
	p.t.Helper()
	if !strings.Contains(p.text(), s) {
		p.t.Fatalf("%s (status %d) lacks %q; it says: %.1500s", p.url, p.status, s, p.text())
	}
}

// client is the browser's HTTP client through node i.
func (b *browser) client(i int) *http.Client {
	return &http.Client{
		Jar: b.jar, Transport: b.c.nodes[i].transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// abs turns a path of the provider into a URL of the public issuer.
func (b *browser) abs(target string) string {
	if strings.HasPrefix(target, "/") {
		return b.c.issuer + target
	}
	return target
}

func (b *browser) do(i int, req *http.Request) *page {
	b.t.Helper()
	resp, err := b.client(i).Do(req)
	if err != nil {
		b.t.Fatalf("%s %s via %s: %v", req.Method, req.URL, b.c.nodes[i].name, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	p := &page{t: b.t, url: req.URL, status: resp.StatusCode, header: resp.Header, body: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		if p.doc, err = html.Parse(strings.NewReader(p.body)); err != nil {
			b.t.Fatal(err)
		}
	}
	return p
}

// get fetches target through node i.
func (b *browser) get(i int, target string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.abs(target), nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(i, req)
}

// post sends a form to target through node i.
func (b *browser) post(i int, target string, form url.Values) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.abs(target), strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(i, req)
}

// follow takes the redirect p answered, through node i; it must stay on the
// provider.
func (b *browser) follow(i int, p *page) *page {
	b.t.Helper()
	u := p.location()
	if !strings.HasPrefix(u.String(), b.c.issuer+"/") {
		b.t.Fatalf("redirect leaves the provider: %s", u)
	}
	return b.get(i, u.String())
}

// submit posts, through node i, the page's form whose action's path is
// path: its hidden fields (CSRF token, challenge) plus values.
func (b *browser) submit(i int, p *page, path string, values map[string]string) *page {
	b.t.Helper()
	action, form := p.form(path)
	for k, v := range values {
		form.Set(k, v)
	}
	return b.post(i, action, form)
}

// form finds the form posting to path and returns its absolute action and
// its hidden fields.
func (p *page) form(path string) (string, url.Values) {
	p.t.Helper()
	if p.doc == nil {
		p.t.Fatalf("%s (status %d) is not HTML: %.500s", p.url, p.status, p.body)
	}
	for _, f := range findAll(p.doc, "form") {
		action, err := p.url.Parse(attr(f, "action"))
		if err != nil || action.Path != path {
			continue
		}
		values := url.Values{}
		for _, in := range findAll(f, "input") {
			if attr(in, "type") == "hidden" {
				values.Set(attr(in, "name"), attr(in, "value"))
			}
		}
		return action.String(), values
	}
	p.t.Fatalf("%s (status %d) has no form posting to %s: %.1500s", p.url, p.status, path, p.text())
	return "", nil
}

// Page-reading helpers, shared with the other test packages.
var (
	findAll = htmlq.Elements
	attr    = htmlq.Attr
)
