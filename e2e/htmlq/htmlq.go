// Package htmlq reads parsed HTML pages for the tests: elements by tag or by
// predicate, attributes, visible text. One copy for every test package that
// looks at the pages (cmd/idp, login-ui, e2e/cluster).
package htmlq

import (
	"strings"

	"golang.org/x/net/html"
)

// Find returns every node under n (n included) that match accepts, in
// document order.
func Find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

// IsElement matches the elements named tag.
func IsElement(tag string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == tag }
}

// Elements returns the elements named tag under n, in document order.
func Elements(n *html.Node, tag string) []*html.Node { return Find(n, IsElement(tag)) }

// Attr is the value of n's attribute key, "" when absent.
func Attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// Text is the text under n, whitespace folded to single spaces.
func Text(n *html.Node) string {
	var sb strings.Builder
	for _, t := range Find(n, func(n *html.Node) bool { return n.Type == html.TextNode }) {
		sb.WriteString(t.Data)
	}
	return strings.Join(strings.Fields(sb.String()), " ")
}
