package loginui

import (
	"net/http"
)

// endSessionParams are the parameters of the end-session endpoint a
// confirmed logout carries on (OpenID Connect RP-Initiated Logout 1.0, §2).
// The hint among them: it names the application whose post-logout address
// the library checks when the request gave no client_id.
var endSessionParams = []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales", "logout_hint"}

// confirmField marks a post of the confirmation form.
const confirmField = "confirm"

// LogoutFormFields are the fields the confirmation form posts besides the
// end-session parameters, read by ConfirmLogout itself: the provider's
// one-value rule covers them too (provider.OneValueEach).
func LogoutFormFields() []string { return []string{csrfField, confirmField} }

// logoutPage is the confirmation page's content.
type logoutPage struct {
	Fields []hiddenField
	Cancel string
}

type hiddenField struct{ Name, Value string }

// ConfirmLogout wraps the provider's end-session endpoint (next), behind
// the provider's one-value-per-parameter rule: a browser with a session
// is asked first unless the request's id_token_hint is an ID token of the
// provider naming the session's agent (RP-Initiated Logout 1.0, §2: the OP
// must ask when the hint's subject is not the logged-in End-User), so that
// a link or an image on any site, with no hint or with one of its author's
// own ID tokens, cannot log the agent out. The confirmation posts back with
// the parameters and the CSRF token. A logout the agent asked for, through
// that form or with a hint naming it, ends the session here
// (logOutThen); any other request the provider refuses ends nothing. A
// hint that is no ID token of the provider is refused (the error page,
// nothing ends); a browser without a session goes on: there is nothing to
// end.
func (h *Handler) ConfirmLogout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			h.renderMessage(w, r, http.StatusBadRequest, msg("bad_form.title"), messagePage{
				Paragraphs: []message{msg("bad_form.text")},
				Links:      []pageLink{{Href: pathLogin, Text: msg("link.portal")}},
			})
			return
		}
		var subject string
		if hint := r.Form.Get("id_token_hint"); hint != "" {
			sub, valid, err := h.requests.LogoutHintSubject(ctx, hint)
			if err != nil {
				h.internalError(w, r, "checking id_token_hint", err)
				return
			}
			if !valid {
				h.log.InfoContext(ctx, "end-session request refused: id_token_hint is no ID token of ours")
				h.renderOAuthError(w, r, http.StatusBadRequest, "invalid_request")
				return
			}
			subject = sub
		}
		if !h.MayHaveSession(r) {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodPost && r.PostForm.Get(confirmField) == "1" && h.validCSRF(r) {
			h.logOutThen(w, r, next)
			return
		}
		b, err := h.currentSession(ctx, r)
		if err != nil {
			h.internalError(w, r, "reading the session at logout", err)
			return
		}
		if !b.Found {
			next.ServeHTTP(w, r)
			return
		}
		if subject != "" && subject == b.Sess.UserID {
			h.logOutThen(w, r, next)
			return
		}
		var fields []hiddenField
		for _, name := range endSessionParams {
			if v := r.Form.Get(name); v != "" {
				fields = append(fields, hiddenField{name, v})
			}
		}
		v := newView(msg("logout.title"), "")
		v.Data = logoutPage{Fields: fields, Cancel: pathSpace}
		h.render(w, r, http.StatusOK, "logout", v)
	})
}

// logOutThen ends the browser's session and clears its cookie, then lets
// the provider answer the request. The agent asked to be logged out: the
// provider ends the session only once the library has accepted the request,
// and a request it refuses (a post_logout_redirect_uri the application did
// not register, a client_id that is unknown or not the hint's) must cost the
// application its redirect, not leave the agent signed in, on a shared
// computer for the next person to use.
func (h *Handler) logOutThen(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if err := h.endBrowserSession(r.Context(), r); err != nil {
		h.internalError(w, r, "ending the session at logout", err)
		return
	}
	h.clearSessionCookie(w)
	next.ServeHTTP(w, r)
}
