package loginui

import (
	"errors"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/storage"
)

// paramNotice names a confirmation another page asks the login page to show
// (?info=password_changed): the query never carries the text itself.
const paramNotice = "info"

// noticeKey is the catalog key of a notice name.
func noticeKey(name string) (string, bool) {
	switch name {
	case "password_changed", "logged_out", "change_lapsed":
		return "notice." + name, true
	}
	return "", false
}

// loginNotice is the notice the login page was asked to show, if any.
// « Vous êtes déconnecté. » and the lapsed change's notice say that the
// browser holds no session: never shown to one that does, the page then
// going on as without them. The page of a logout, kept in a tab's history
// and reloaded once the agent logged in again, told the agent of a shared
// PC it was logged out while its session went on.
func loginNotice(r *http.Request, b browserSession) message {
	name := r.URL.Query().Get(paramNotice)
	key, ok := noticeKey(name)
	if !ok || b.Found && name != "password_changed" {
		return message{}
	}
	return msg(key)
}

// ssoOutcome is what GET /login does with an auth request.
type ssoOutcome int

const (
	showLoginForm ssoOutcome = iota
	completeWithSession
	toChangeForm
	failLoginRequired
	failInteractionRequired
)

// decideSSO applies OpenID Connect's prompt, max_age and id_token_hint to
// the browser's session, in one place and without I/O.
func decideSSO(ar storage.AuthRequest, b browserSession, now time.Time) ssoOutcome {
	if ar.IDTokenHintSubject != "" && b.Found && b.User.ID != ar.IDTokenHintSubject {
		// The application asks about the agent of its ID token (OIDC Core
		// 3.1.2.1): another agent's session does not answer for that one,
		// so it counts as none; prompt=none gets login_required, otherwise
		// the login form asks.
		b = browserSession{}
	}
	promptNone := slices.Contains(ar.Prompt, "none")
	// select_account asks the agent to choose the account (OIDC Core
	// 3.1.2.1): a browser holds one session, so the choice is made on the
	// login form, as for login. consent asks nothing here: the relying
	// applications are the agency's own, registered by its administrators,
	// and the habilitations are its access decisions (README, "Habilitations").
	promptLogin := slices.Contains(ar.Prompt, "login") || slices.Contains(ar.Prompt, "select_account")
	// In float seconds: a huge max_age must not overflow a Duration.
	fresh := ar.MaxAge == nil || now.Sub(b.Sess.AuthTime).Seconds() <= float64(*ar.MaxAge)
	switch {
	case b.active() && !promptLogin && fresh:
		return completeWithSession
	case promptNone && (b.changing() || b.Found && b.User.PendingPasswordChange && !b.User.Disabled):
		// The agent is there but must choose a password first.
		return failInteractionRequired
	case promptNone:
		return failLoginRequired
	case b.changing():
		return toChangeForm
	}
	return showLoginForm
}

// loginPage is GET /login: single sign-on when the browser's session allows
// it, the login form otherwise.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, ok := authRequestParam(r)
	if !ok {
		h.renderExpired(w, r)
		return
	}
	b, err := h.currentSession(ctx, r)
	if err != nil {
		h.internalError(w, r, "login page", err)
		return
	}
	v := h.loginView(id, "")
	v.Notice = loginNotice(r, b)
	if id == "" {
		switch {
		case b.changing():
			http.Redirect(w, r, link(pathChange, ""), http.StatusSeeOther)
		case b.active() && v.Notice.Key == "":
			http.Redirect(w, r, pathSpace, http.StatusSeeOther)
		default:
			h.render(w, r, http.StatusOK, "login", v)
		}
		return
	}

	ar, err := h.authRequest(r, id)
	if errors.Is(err, storage.ErrNotFound) {
		h.renderExpired(w, r)
		return
	}
	if err != nil {
		h.internalError(w, r, "loading auth request", err)
		return
	}
	switch decideSSO(ar, b, h.now()) {
	case completeWithSession:
		h.continueToApplication(w, r, id, &ar, b.Sess)
	case toChangeForm:
		http.Redirect(w, r, link(pathChange, id), http.StatusSeeOther)
	case failLoginRequired:
		h.redirectWithOAuthError(w, r, id, "login_required", "")
	case failInteractionRequired:
		h.redirectWithOAuthError(w, r, id, "interaction_required", "")
	default:
		prefill(v, "email", ar.LoginHint)
		h.render(w, r, http.StatusOK, "login", v)
	}
}

// redirectWithOAuthError sends the browser back to the relying application
// with an OAuth error (prompt=none that cannot be honoured).
func (h *Handler) redirectWithOAuthError(w http.ResponseWriter, r *http.Request, id, oauthError, description string) {
	err := h.requests.AnswerError(h.endingBinding(w, r, id), r, id, oauthError, description)
	if errors.Is(err, storage.ErrNotFound) {
		h.renderExpired(w, r)
		return
	}
	if err != nil {
		h.internalError(w, r, "answering an OAuth error", err)
	}
}

// prefill sets a field's value from the relying application's login_hint,
// when the hint looks like an address (it is escaped when rendered anyway).
func prefill(v *view, id, value string) {
	if !utf8.ValidString(value) || !plausibleEmail(value) {
		return
	}
	f := v.Fields[id]
	f.Value = value
	v.Fields[id] = f
}

// loginView is the login form with the e-mail kept (never the password).
func (h *Handler) loginView(id, email string) *view {
	v := newView(msg("login.title"), id)
	v.addField(field{ID: "email", Type: "email", Label: msg("field.email"), Value: email, Autocomplete: "username"})
	v.addField(field{ID: "password", Type: "password", Label: msg("field.password"), Autocomplete: "current-password"})
	return v
}

// loginSubmit is POST /login. Every refusal answers 200 with the form again;
// wrong credentials always get the one generic message.
func (h *Handler) loginSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, ok := authRequestParam(r)
	if !ok {
		h.renderExpired(w, r)
		return
	}
	// Read once: checked here, before the hash, and handed to Finish.
	var ar *storage.AuthRequest
	if id != "" {
		read, err := h.authRequest(r, id)
		if errors.Is(err, storage.ErrNotFound) {
			h.renderExpired(w, r)
			return
		} else if err != nil {
			h.internalError(w, r, "loading auth request", err)
			return
		}
		ar = &read
	}
	f := readFields(r, "email", "password")
	email, password := f.get("email"), f.get("password")
	v := h.loginView(id, email)
	v.markBad(f.bad)
	if len(f.bad) == 0 {
		if email == "" {
			v.fieldError("email", msg("error.email_needed"))
		}
		if password == "" {
			v.fieldError("password", msg("login.password_needed"))
		}
	}
	if len(v.Errors) > 0 {
		h.render(w, r, http.StatusOK, "login", v)
		return
	}
	if len(password) > maxPasswordBytes || overlongEmail(email) {
		v.fieldError("password", msg("login.invalid"))
		h.render(w, r, http.StatusOK, "login", v)
		return
	}

	login, cookie, sess, err := h.accounts.LogIn(ctx, email, password, h.meta(r, id))
	if errors.Is(err, account.ErrInvalidCredentials) {
		v.fieldError("password", msg("login.invalid"))
		h.render(w, r, http.StatusOK, "login", v)
		return
	}
	if errors.Is(err, account.ErrThrottled) {
		v.fieldError("password", msg("error.throttled"))
		h.render(w, r, http.StatusTooManyRequests, "login", v)
		return
	}
	if errors.Is(err, account.ErrBusy) {
		h.renderBusy(w, r, "login", v, err)
		return
	}
	if err != nil {
		h.internalError(w, r, "authenticating", err)
		return
	}

	// The session this browser held before, if any, ends: the new one
	// replaces it. The login stands if that fails: the browser loses the
	// old cookie all the same, and the old session expires on its own.
	if err := h.endBrowserSession(ctx, r); err != nil {
		h.log.ErrorContext(ctx, "login: the browser's previous session was not ended", "err", err)
	}
	h.setSessionCookie(w, cookie)
	if login.Provisional {
		http.Redirect(w, r, link(pathChange, id), http.StatusSeeOther)
		return
	}
	h.continueToApplication(w, r, id, ar, sess)
}
