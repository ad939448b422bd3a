package loginui

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
)

// oauthErrorCode keeps only what looks like an OAuth error code: the page
// shows it, and nothing the request carried may be reflected.
var oauthErrorCode = regexp.MustCompile(`^[a-z_]{1,64}$`)

// OAuthErrorPages wraps the provider's browser-facing endpoints (authorize,
// its callback, end_session). When the OIDC library answers an error it
// cannot redirect (unknown client, unregistered redirect URI...) it writes
// plain text or JSON meant for developers; the agent gets this French page
// instead, with the same status, and never the request's own words.
func (h *Handler) OAuthErrorPages(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &errorCapture{ResponseWriter: w}
		next.ServeHTTP(cw, r)
		if !cw.captured {
			return
		}
		code := "invalid_request"
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(cw.body.Bytes(), &body) == nil && oauthErrorCode.MatchString(body.Error) {
			code = body.Error
		}
		h.log.InfoContext(r.Context(), "authorization error page", "status", cw.status, "error", code)
		h.renderOAuthError(w, r, cw.status, code)
	})
}

// renderOAuthError is the page of a request of an application that the
// provider refuses: code is the OAuth error, never the request's own words.
func (h *Handler) renderOAuthError(w http.ResponseWriter, r *http.Request, status int, code string) {
	h.renderMessage(w, r, status, msg("oauth.error.title"), messagePage{
		Paragraphs: []message{msg("oauth.error.text"), msg("oauth.error.advice"), msg("oauth.error.code", code)},
		Links:      []pageLink{{Href: pathLogin, Text: msg("link.portal")}},
	})
}

// errorCapture lets successes and redirects through untouched and holds
// back an error answer in plain text or JSON.
type errorCapture struct {
	http.ResponseWriter
	captured bool
	status   int
	body     bytes.Buffer
}

func (c *errorCapture) WriteHeader(status int) {
	ct := c.Header().Get("Content-Type")
	if status >= 400 && (ct == "" || strings.HasPrefix(ct, "text/plain") || strings.HasPrefix(ct, "application/json")) {
		c.captured, c.status = true, status
		c.Header().Del("Content-Type")
		return
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *errorCapture) Write(b []byte) (int, error) {
	if c.captured {
		return c.body.Write(b)
	}
	return c.ResponseWriter.Write(b)
}
