package loginui

import (
	"crypto/subtle"
	"net/http"

	"github.com/caf-extranet/idp/storage"
)

// csrfField is the hidden field carrying the CSRF token.
const csrfField = "csrf"

// csrfTokenLength is the length of storage.NewSecret's output (256 bits,
// base64url): a cookie of another shape was not set by us and is replaced.
const csrfTokenLength = 43

// csrfCookieName: the __Host- prefix (no Domain, Path=/, Secure) keeps a
// sibling subdomain from planting a token, but browsers refuse it without
// Secure, hence the plain name over http.
func csrfCookieName(secure bool) string {
	if secure {
		return "__Host-idp_csrf"
	}
	return "idp_csrf"
}

// browserToken returns the browser's CSRF cookie, when it holds one of ours.
// The same random value binds the CAPTCHA challenges to the browser.
func (h *Handler) browserToken(r *http.Request) (string, bool) {
	c, err := r.Cookie(csrfCookieName(h.cfg.SecureCookies))
	if err != nil || len(c.Value) != csrfTokenLength {
		return "", false
	}
	return c.Value, true
}

// ensureCSRF returns the browser's token, setting a new cookie when it has
// none. The cookie lives as long as the browser session: a form left open
// for an hour still submits. Call it once per response (render does, unless
// the view already has the token).
func (h *Handler) ensureCSRF(w http.ResponseWriter, r *http.Request) string {
	if tok, ok := h.browserToken(r); ok {
		return tok
	}
	tok := storage.NewSecret()
	http.SetCookie(w, &http.Cookie{
		Name: csrfCookieName(h.cfg.SecureCookies), Value: tok, Path: "/",
		HttpOnly: true, Secure: h.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
	return tok
}

// validCSRF is the double-submit check: the hidden field must equal the
// cookie, compared in constant time.
func (h *Handler) validCSRF(r *http.Request) bool {
	tok, ok := h.browserToken(r)
	if !ok {
		return false
	}
	sent := r.PostForm.Get(csrfField)
	return subtle.ConstantTimeCompare([]byte(sent), []byte(tok)) == 1
}
