package loginui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/caf-extranet/idp/storage"
)

// SessionCookieName is the name of the browser's session cookie: with the
// __Host- prefix when the issuer is https (browsers refuse the prefix without
// Secure). The provider needs it to end the session at logout.
func SessionCookieName(secure bool) string {
	if secure {
		return "__Host-idp_session"
	}
	return "idp_session"
}

// setSessionCookie hands the browser its session. No Max-Age: the cookie
// dies with the browser, and the server's idle and absolute expiries decide
// before that.
func (h *Handler) setSessionCookie(w http.ResponseWriter, value string) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookieName(h.cfg.SecureCookies), Value: value, Path: "/",
		HttpOnly: true, Secure: h.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

func (h *Handler) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookieName(h.cfg.SecureCookies), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: h.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

// browserSession is the browser's login, if any.
type browserSession struct {
	Found  bool
	Cookie string
	Sess   storage.Session
	User   storage.User
}

// active: an SSO session of an agent who may use it.
func (b browserSession) active() bool {
	return b.Found && b.Sess.Kind == storage.SessionActive && !b.User.Disabled && !b.User.PendingPasswordChange
}

// changing: the browser is between the provisional login and the forced
// change.
func (b browserSession) changing() bool {
	return b.Found && b.Sess.Kind == storage.SessionPasswordChange && !b.User.Disabled
}

// currentSession looks up the browser's session cookie. An unknown or
// expired session, or one whose agent is gone, is no session.
func (h *Handler) currentSession(ctx context.Context, r *http.Request) (browserSession, error) {
	c, err := r.Cookie(SessionCookieName(h.cfg.SecureCookies))
	if err != nil || c.Value == "" {
		return browserSession{}, nil
	}
	s, u, err := h.accounts.SessionAndUser(ctx, c.Value)
	if errors.Is(err, storage.ErrNotFound) {
		return browserSession{}, nil
	}
	if err != nil {
		return browserSession{}, fmt.Errorf("looking up session: %w", err)
	}
	return browserSession{Found: true, Cookie: c.Value, Sess: s, User: u}, nil
}

// endBrowserSession deletes the session the browser presents, if any, so a
// new login never leaves the previous one behind.
func (h *Handler) endBrowserSession(ctx context.Context, r *http.Request) error {
	c, err := r.Cookie(SessionCookieName(h.cfg.SecureCookies))
	if err != nil || c.Value == "" {
		return nil
	}
	if err := h.accounts.EndSession(ctx, c.Value); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("ending previous session: %w", err)
	}
	return nil
}

// continueToApplication is where a browser goes once it holds an active
// session: back to the relying application with its code, or to the
// portal's secure space when the agent came without an auth request. ar is
// the request as the handler already read it, or nil to read it here.
func (h *Handler) continueToApplication(w http.ResponseWriter, r *http.Request, authRequestID string, ar *storage.AuthRequest, s storage.Session) {
	if authRequestID == "" {
		http.Redirect(w, r, pathSpace, http.StatusSeeOther)
		return
	}
	var err error
	if ar == nil {
		var read storage.AuthRequest
		read, err = h.authRequest(r, authRequestID)
		ar = &read
	}
	if err == nil {
		err = h.requests.Finish(h.endingBinding(w, r, authRequestID), r, *ar, s)
	}
	if errors.Is(err, storage.ErrNotFound) {
		h.renderExpired(w, r)
		return
	}
	if errors.Is(err, storage.ErrNotHabilitated) {
		if slices.Contains(ar.Prompt, "none") {
			// prompt=none shows no page (OIDC Core 3.1.2.1), and no
			// interaction would let the agent in: the application gets at
			// once what « Retourner à l'application » would send it.
			h.redirectWithOAuthError(w, r, authRequestID, "access_denied", notHabilitatedDescription)
			return
		}
		h.renderNotHabilitated(w, r, authRequestID)
		return
	}
	if err != nil {
		h.internalError(w, r, "completing auth request", err)
	}
}

// MayHaveSession tells the provider whether single sign-on is worth a look:
// the browser sends a session cookie.
func (h *Handler) MayHaveSession(r *http.Request) bool {
	c, err := r.Cookie(SessionCookieName(h.cfg.SecureCookies))
	return err == nil && c.Value != ""
}

// SessionFor is the provider's single sign-on at /authorize: the browser's
// session completes the new auth request when GET /login would have
// completed it (decideSSO), so that the browser skips the login page.
func (h *Handler) SessionFor(r *http.Request, ar storage.AuthRequest) (storage.Session, storage.User, bool, error) {
	b, err := h.currentSession(r.Context(), r)
	if err != nil {
		return storage.Session{}, storage.User{}, false, err
	}
	if decideSSO(ar, b, h.now()) != completeWithSession {
		return storage.Session{}, storage.User{}, false, nil
	}
	return b.Sess, b.User, true, nil
}
