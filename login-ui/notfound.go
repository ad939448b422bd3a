package loginui

import (
	"net/http"
	"strings"
)

// NotFoundPages wraps the handler of every path no page took (the OpenID
// provider's endpoints, behind the router's catch-all). The OIDC library
// answers a path of none of its endpoints with Go's English plain-text
// « 404 page not found »: the agent who types an address, follows an old
// bookmark or adds a slash gets the French page instead, with the same
// status. A page's path with another method (GET /logout, POST /espace) is
// 405, on the same kind of page. Everything else the library answers, its
// JSON errors included, goes through untouched.
func (h *Handler) NotFoundPages(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allow := h.allow[r.URL.Path]; allow != "" {
			w.Header().Set("Allow", allow)
			h.renderMessage(w, r, http.StatusMethodNotAllowed, msg("method.title"), messagePage{
				Paragraphs: []message{msg("method.text")},
				Links:      []pageLink{{Href: pathLogin, Text: msg("link.portal")}},
			})
			return
		}
		nf := &notFoundCapture{ResponseWriter: w}
		next.ServeHTTP(nf, r)
		if nf.captured {
			h.NotFound(w, r)
		}
	})
}

// NotFound is the French page of a path that leads nowhere (404).
func (h *Handler) NotFound(w http.ResponseWriter, r *http.Request) {
	h.renderMessage(w, r, http.StatusNotFound, msg("notfound.title"), messagePage{
		Paragraphs: []message{msg("notfound.text")},
		Links:      []pageLink{{Href: pathLogin, Text: msg("link.portal")}},
	})
}

// notFoundCapture holds back a 404 in plain text (or without a type), the
// answer of the library's router to an unknown path, and lets every other
// answer through.
type notFoundCapture struct {
	http.ResponseWriter
	captured bool
}

func (c *notFoundCapture) WriteHeader(status int) {
	ct := c.Header().Get("Content-Type")
	if status == http.StatusNotFound && (ct == "" || strings.HasPrefix(ct, "text/plain")) {
		c.captured = true
		c.Header().Del("Content-Type")
		return
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *notFoundCapture) Write(b []byte) (int, error) {
	if c.captured {
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (c *notFoundCapture) Unwrap() http.ResponseWriter { return c.ResponseWriter }
