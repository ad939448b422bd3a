package main

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

// browser is a cookie-keeping HTTP client that finds form fields by their
// visible labels, as a person or a screen reader does. It stops following
// redirects when they leave the provider (to a relying application).
type browser struct {
	t      *testing.T
	client *http.Client
	origin string // the provider's scheme://host
}

func newBrowser(t *testing.T, issuer string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t, origin: strings.TrimSuffix(issuer, "/")}
	b.client = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), b.origin+"/") {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// page is a response as the browser saw it.
type page struct {
	t      *testing.T
	URL    *url.URL
	Status int
	Header http.Header
	Body   string
	doc    *html.Node
}

// Location is where a redirect that left the provider was going.
func (p *page) Location() string { return p.Header.Get("Location") }

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := &page{t: b.t, URL: resp.Request.URL, Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		p.doc, err = html.Parse(strings.NewReader(p.Body))
		if err != nil {
			b.t.Fatalf("parse %s: %v", req.URL, err)
		}
	}
	return p
}

func (b *browser) get(rawURL string) *page {
	b.t.Helper()
	if strings.HasPrefix(rawURL, "/") {
		rawURL = b.origin + rawURL
	}
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// Page-reading helpers, shared with the other test packages.
var (
	findAll  = htmlq.Find
	isElem   = htmlq.IsElement
	attr     = htmlq.Attr
	nodeText = htmlq.Text
)

// form is an HTML form being filled in.
type form struct {
	p      *page
	action string
	values url.Values
	labels map[string]string // visible label text → field name
	submit string            // name=value of the clicked button, if named
}

// text is the page's visible text, whitespace folded.
func (p *page) text() string {
	if p.doc == nil {
		return p.Body
	}
	var sb strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && (n.Data == "style" || n.Data == "script") {
			return
		}
		if n.Type == html.TextNode {
			sb.WriteString(n.Data)
			sb.WriteString(" ")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(p.doc)
	return strings.Join(strings.Fields(sb.String()), " ")
}

func (p *page) mustContain(texts ...string) {
	p.t.Helper()
	got := p.text()
	for _, s := range texts {
		if !strings.Contains(got, s) {
			p.t.Fatalf("page %s (status %d) lacks %q; it says: %.1500s", p.URL, p.Status, s, got)
		}
	}
}

// form returns the form holding the submit button labelled button.
func (p *page) form(button string) *form {
	p.t.Helper()
	if p.doc == nil {
		p.t.Fatalf("page %s (status %d) is not HTML: %.500s", p.URL, p.Status, p.Body)
	}
	for _, f := range findAll(p.doc, isElem("form")) {
		for _, btn := range findAll(f, func(n *html.Node) bool {
			return n.Type == html.ElementNode && (n.Data == "button" || n.Data == "input" && attr(n, "type") == "submit")
		}) {
			label := nodeText(btn)
			if btn.Data == "input" {
				label = attr(btn, "value")
			}
			if label != button {
				continue
			}
			fm := &form{p: p, action: attr(f, "action"), values: url.Values{}, labels: map[string]string{}}
			if name := attr(btn, "name"); name != "" {
				fm.values.Set(name, attr(btn, "value"))
			}
			ids := map[string]string{}
			for _, in := range findAll(f, func(n *html.Node) bool {
				return n.Type == html.ElementNode && (n.Data == "input" || n.Data == "textarea")
			}) {
				typ := attr(in, "type")
				if typ == "submit" || typ == "button" {
					continue
				}
				if attr(in, "name") != "" && (typ == "hidden" || attr(in, "value") != "") {
					fm.values.Set(attr(in, "name"), attr(in, "value"))
				}
				if id := attr(in, "id"); id != "" {
					ids[id] = attr(in, "name")
				}
			}
			for _, l := range findAll(p.doc, isElem("label")) {
				if name, ok := ids[attr(l, "for")]; ok {
					fm.labels[nodeText(l)] = name
				}
			}
			return fm
		}
	}
	p.t.Fatalf("page %s has no form with a button %q; it says: %.1500s", p.URL, button, p.text())
	return nil
}

// set fills the field whose label starts with label (labels may carry a
// hint after the name, e.g. "(obligatoire)").
func (f *form) set(label, value string) *form {
	f.p.t.Helper()
	for l, name := range f.labels {
		if l == label || strings.HasPrefix(l, label) {
			f.values.Set(name, value)
			return f
		}
	}
	f.p.t.Fatalf("form on %s has no field labelled %q (labels: %v)", f.p.URL, label, f.labels)
	return f
}

// value is a field's current value, by label.
func (f *form) value(label string) string {
	for l, name := range f.labels {
		if l == label || strings.HasPrefix(l, label) {
			return f.values.Get(name)
		}
	}
	return ""
}

func (b *browser) submit(f *form) *page {
	b.t.Helper()
	target, err := f.p.URL.Parse(f.action)
	if err != nil {
		b.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, target.String(), strings.NewReader(f.values.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}
