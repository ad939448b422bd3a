package loginui

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"time"

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

// BindBrowser binds the new auth request id to this browser: a random
// cookie of its own, sent back only to the login pages (Path=/login), whose
// hash the request keeps. Only that browser's pages complete the request
// (authRequest), so that a link /login?authRequestID=… sent to someone else
// completes nothing for its sender. A cookie per request, not the CSRF
// cookie: an application may send the browser to /authorize by a
// cross-site POST, which carries none of our SameSite=Lax cookies, and a new
// CSRF cookie set then would break the forms open in other tabs.
func (h *Handler) BindBrowser(w http.ResponseWriter, authRequestID string) string {
	tok := storage.NewSecret()
	ttl := h.cfg.AuthRequestTTL
	if ttl <= 0 {
		ttl = time.Minute
	}
	http.SetCookie(w, &http.Cookie{
		Name: authRequestCookieName(h.cfg.SecureCookies, authRequestID), Value: tok, Path: pathLogin,
		MaxAge: int(ttl / time.Second), HttpOnly: true, Secure: h.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
	return authRequestBinding(tok)
}

// answeredBindingGrace is how long a binding outlives the answer to the
// application: until the application redeems the code (which ends the
// request), a second click on « Valider » once the first answer has come back
// (the application is slow), the forced-change form posted again or the back
// button still find the request theirs and go on with a new code, as the
// first click did. Kept for the request's whole lifetime instead, one cookie
// per request piled up in the browser and went with every login page.
const answeredBindingGrace = 2 * time.Minute

// endingBinding returns w such that the answer the provider writes to the
// relying application for request id (a code or an error, by redirect or
// form post) also shortens the request's binding cookie, which r carries,
// to answeredBindingGrace. When nothing is written (the request is gone, or
// the agent may not enter), the login pages explain, and « Retourner à
// l'application » still needs the binding as it was.
func (h *Handler) endingBinding(w http.ResponseWriter, r *http.Request, id string) http.ResponseWriter {
	c, err := r.Cookie(authRequestCookieName(h.cfg.SecureCookies, id))
	if err != nil {
		return w // nothing to shorten (a request from before bindings)
	}
	return &bindingEnd{ResponseWriter: w, cookie: &http.Cookie{
		Name: c.Name, Value: c.Value, Path: pathLogin, MaxAge: int(answeredBindingGrace / time.Second),
		HttpOnly: true, Secure: h.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	}}
}

type bindingEnd struct {
	http.ResponseWriter
	cookie    *http.Cookie
	shortened bool
}

func (b *bindingEnd) shorten() {
	if !b.shortened {
		b.shortened = true
		http.SetCookie(b.ResponseWriter, b.cookie)
	}
}

func (b *bindingEnd) WriteHeader(status int) {
	b.shorten()
	b.ResponseWriter.WriteHeader(status)
}

func (b *bindingEnd) Write(p []byte) (int, error) {
	b.shorten()
	return b.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (b *bindingEnd) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// authRequestCookieName: __Secure- rather than __Host-, which requires
// Path=/.
func authRequestCookieName(secure bool, authRequestID string) string {
	if secure {
		return "__Secure-idp_ar_" + authRequestID
	}
	return "idp_ar_" + authRequestID
}

func authRequestBinding(browserToken string) string {
	return storage.HashSecret("auth request\x00" + browserToken)
}

// authRequest reads the auth request id for this browser: storage.ErrNotFound
// when it expired, is unknown, or was sent to /authorize by another browser.
func (h *Handler) authRequest(r *http.Request, id string) (storage.AuthRequest, error) {
	ar, err := h.requests.AuthRequest(r.Context(), id)
	if err != nil {
		return ar, err
	}
	if ar.BrowserBinding == "" {
		return ar, nil // created before bindings existed (migration 0004)
	}
	c, err := r.Cookie(authRequestCookieName(h.cfg.SecureCookies, id))
	if err != nil || subtle.ConstantTimeCompare([]byte(authRequestBinding(c.Value)), []byte(ar.BrowserBinding)) != 1 {
		return storage.AuthRequest{}, fmt.Errorf("loginui: auth request %s belongs to another browser: %w", id, storage.ErrNotFound)
	}
	return ar, nil
}
