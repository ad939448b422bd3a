package loginui

import (
	"errors"
	"net/http"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/account/policy"
	"github.com/caf-extranet/idp/storage"
)

// policyHelpID is the id of the convention's help text, which the new
// password field points at with aria-describedby.
const policyHelpID = "policy"

// changePageData is the content of both change forms.
type changePageData struct {
	PolicyRules []message
	// Agent is the forced change form's agent field (agentField).
	Agent string
}

// policyRules is the convention shown as help text, from the active policy's
// numbers. With the agency's default it reads as the procedure document: « au
// moins une lettre minuscule », « au moins un chiffre », « entre 6 et 20
// caractères ».
func policyRules(p policy.Policy) []message {
	var rules []message
	if p.RequireLowercase {
		rules = append(rules, msg("policy.lowercase"))
	}
	if p.RequireUppercase {
		rules = append(rules, msg("policy.uppercase"))
	}
	if p.RequireDigit {
		rules = append(rules, msg("policy.digit"))
	}
	if p.RequireSymbol {
		rules = append(rules, msg("policy.symbol"))
	}
	if p.MaxLength > 0 {
		rules = append(rules, msg("policy.between", p.MinLength, p.MaxLength))
	} else if p.MinLength > 0 {
		rules = append(rules, msg("policy.at_least", p.MinLength))
	}
	if p.ForbidEmailLocalPart {
		rules = append(rules, msg("policy.no_email"))
	}
	if len(p.Forbidden) > 0 {
		rules = append(rules, msg("policy.not_common"))
	}
	return rules
}

// addPasswordFields declares the current/new/confirmation inputs of a change
// form (nothing is ever kept in them).
func (h *Handler) addPasswordFields(v *view, currentHint message) {
	v.addField(field{ID: "current", Type: "password", Label: msg("field.current"), Hint: currentHint, Autocomplete: "current-password"})
	v.addField(field{ID: "new", Type: "password", Label: msg("field.new"), Autocomplete: "new-password", Describe: []string{policyHelpID}})
	v.addField(field{ID: "confirmation", Type: "password", Label: msg("field.confirmation"), Hint: msg("change.confirmation_hint"), Autocomplete: "new-password"})
	v.Data = changePageData{PolicyRules: policyRules(h.accounts.Policy())}
}

// violationMessages puts each broken rule next to its field: the confirmation
// mismatch next to « Confirmation mot de passe », the others next to
// « Nouveau mot de passe ».
func violationMessages(v *view, vs []policy.Violation, p policy.Policy) {
	for _, x := range vs {
		id, m := "new", msg("violation.other")
		switch x {
		case policy.Empty:
			m = msg("violation.empty")
		case policy.TooShort:
			m = msg("violation.too_short", p.MinLength)
		case policy.TooLong:
			m = msg("violation.too_long", p.MaxLength)
		case policy.NoLowercase:
			m = msg("violation.no_lowercase")
		case policy.NoUppercase:
			m = msg("violation.no_uppercase")
		case policy.NoDigit:
			m = msg("violation.no_digit")
		case policy.NoSymbol:
			m = msg("violation.no_symbol")
		case policy.Forbidden:
			m = msg("violation.forbidden")
		case policy.ContainsEmail:
			m = msg("violation.contains_email")
		case policy.SameAsCurrent:
			m = msg("violation.same_as_current")
		case policy.ConfirmationMismatch:
			id, m = "confirmation", msg("violation.mismatch")
		}
		v.fieldError(id, m)
	}
}

// oversized refuses passwords too long to reach the hasher, as the service
// would refuse them, without calling it: the current one is wrong, the new
// one too long, the confirmation different.
func oversized(v *view, current, newPassword, confirmation, currentWrong string) bool {
	if len(current) <= maxPasswordBytes && len(newPassword) <= maxPasswordBytes && len(confirmation) <= maxPasswordBytes {
		return false
	}
	if len(current) > maxPasswordBytes {
		v.fieldError("current", msg(currentWrong))
	}
	if len(newPassword) > maxPasswordBytes {
		v.fieldError("new", msg("violation.too_long_bytes"))
	}
	if len(confirmation) > maxPasswordBytes && len(newPassword) <= maxPasswordBytes {
		v.fieldError("confirmation", msg("violation.mismatch"))
	}
	return true
}

// changeErrors shows a *account.ChangeError: the current password first, then
// every policy violation, all at once.
func (h *Handler) changeErrors(v *view, ce *account.ChangeError, current, currentWrong string) {
	if ce.CurrentWrong {
		if current == "" {
			v.fieldError("current", msg("change.current_needed"))
		} else {
			v.fieldError("current", msg(currentWrong))
		}
	}
	violationMessages(v, ce.Violations, h.accounts.Policy())
}

// changeView is the forced change form of the restricted session b, for
// the browser whose CSRF token is token.
func (h *Handler) changeView(id string, b browserSession, token string) *view {
	v := newView(msg("change.title"), id)
	v.Heading = msg("change.heading")
	v.CSRF = token
	h.addPasswordFields(v, msg("change.current_hint"))
	v.Data = changePageData{PolicyRules: policyRules(h.accounts.Policy()), Agent: h.agentField(token, b.Sess.UserID)}
	return v
}

// changePage is GET /login/change: only for a browser between the
// provisional login and the forced change.
func (h *Handler) changePage(w http.ResponseWriter, r *http.Request) {
	id, _ := authRequestParam(r)
	b, ok := h.changingSession(w, r, id)
	if !ok {
		return
	}
	h.render(w, r, http.StatusOK, "change", h.changeView(id, b, h.ensureCSRF(w, r)))
}

// changingSession is the browser's session between a provisional login and
// the forced change. Any other browser is sent to the login page (which
// decides where it belongs), and ok is false: the answer is written.
func (h *Handler) changingSession(w http.ResponseWriter, r *http.Request, id string) (b browserSession, ok bool) {
	b, err := h.currentSession(r.Context(), r)
	if err != nil {
		h.internalError(w, r, "change form", err)
		return b, false
	}
	if !b.changing() {
		http.Redirect(w, r, link(pathLogin, id), http.StatusSeeOther)
		return b, false
	}
	return b, true
}

// changeSubmit is POST /login/change.
func (h *Handler) changeSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, _ := authRequestParam(r)
	b, err := h.currentSession(ctx, r)
	if err != nil {
		h.internalError(w, r, "change form", err)
		return
	}
	if !b.changing() {
		h.changeWithoutSession(w, r, id, b)
		return
	}
	f := readFields(r, "current", "new", "confirmation")
	current, newPassword, confirmation := f.get("current"), f.get("new"), f.get("confirmation")
	token, _ := h.browserToken(r) // present: postForm checked it
	v := h.changeView(id, b, token)
	v.markBad(f.bad)
	if len(v.Errors) > 0 || oversized(v, current, newPassword, confirmation, "change.current_wrong") {
		h.render(w, r, http.StatusOK, "change", v)
		return
	}

	err = h.accounts.CompleteForcedChange(ctx, b.Sess.UserID, current, newPassword, confirmation, h.meta(r, id))
	switch {
	case h.renderRefusedChange(w, r, v, "change", "change.current_wrong", current, err):
		return
	case errors.Is(err, account.ErrNotPending):
		h.nothingToChange(w, r, id)
		return
	case err != nil:
		h.internalError(w, r, "forced change", err)
		return
	}

	// The change revoked the agent's sessions; the restricted one goes in
	// any case.
	if err := h.endBrowserSession(ctx, r); err != nil {
		h.internalError(w, r, "ending session", err)
		return
	}
	// The request may have lapsed while the agent chose the password (30
	// minutes from /authorize, and the mail may take an hour): it can no
	// longer be answered, but the agent must learn that the new password
	// is in force, not only « Demande de connexion expirée », which reads
	// as a failure and sends it back to the provisional password.
	ar, lapsed, err := h.pendingRequest(r, id)
	if err != nil {
		h.internalError(w, r, "loading auth request", err)
		return
	}
	if lapsed {
		id = ""
	}
	if h.cfg.ReloginAfterChange {
		h.clearSessionCookie(w)
		http.Redirect(w, r, link(pathLogin, id, paramNotice, "password_changed"), http.StatusSeeOther)
		return
	}
	cookie, sess, err := h.accounts.StartSession(ctx, b.Sess.UserID, storage.SessionActive, h.now())
	if err != nil {
		h.internalError(w, r, "starting session", err)
		return
	}
	h.setSessionCookie(w, cookie)
	if lapsed {
		// The secure space lists the applications, the one the agent came
		// from among them, and says the password was changed.
		http.Redirect(w, r, link(pathSpace, "", paramNotice, "password_changed"), http.StatusSeeOther)
		return
	}
	h.continueToApplication(w, r, id, ar, sess)
}

// nothingToChange answers a forced change that found nothing left to change.
// If the browser's restricted session is gone too, a password change ended
// it while this request was on its way: most likely the first click of a
// double click on « Valider », whose answer may already have given the
// browser its new session under the same cookie name. That cookie is left
// alone and the login page decides, as for a request that came after the
// change: it goes on with the new session, or shows the form. Otherwise the
// provisional password expired or was used elsewhere: the restricted
// session is of no further use.
func (h *Handler) nothingToChange(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	if _, ok := h.changingSession(w, r, id); !ok {
		return
	}
	if err := h.endBrowserSession(ctx, r); err != nil {
		h.internalError(w, r, "ending session", err)
		return
	}
	h.clearSessionCookie(w)
	h.renderMessage(w, r, http.StatusOK, msg("change.not_pending.title"), messagePage{
		Paragraphs: []message{msg("change.not_pending.text")},
		Links: []pageLink{
			{Href: link(pathForgot, id), Text: msg("link.forgot")},
			{Href: link(pathLogin, id), Text: msg("link.back_login")},
		},
	})
}

// passwordView is the voluntary change form, with the address kept.
func (h *Handler) passwordView(id, email string) *view {
	v := newView(msg("password.title"), id)
	v.addField(field{ID: "email", Type: "email", Label: msg("field.email"), Value: email, Autocomplete: "username"})
	h.addPasswordFields(v, message{})
	return v
}

// passwordPage is GET /login/password: « Mettre à jour votre mot de passe ».
func (h *Handler) passwordPage(w http.ResponseWriter, r *http.Request) {
	id, _ := authRequestParam(r)
	h.render(w, r, http.StatusOK, "password", h.passwordView(id, ""))
}

// passwordSubmit is POST /login/password. A wrong current password and an
// unknown address get the same message.
func (h *Handler) passwordSubmit(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, _ := authRequestParam(r)
	f := readFields(r, "email", "current", "new", "confirmation")
	email := f.get("email")
	current, newPassword, confirmation := f.get("current"), f.get("new"), f.get("confirmation")
	v := h.passwordView(id, email)
	v.markBad(f.bad)
	if len(v.Errors) > 0 || oversized(v, current, newPassword, confirmation, "password.current_wrong") {
		h.render(w, r, http.StatusOK, "password", v)
		return
	}
	if email == "" {
		// Nobody to ask the service about; the policy alone still lists
		// everything else at once.
		v.fieldError("email", msg("error.email_needed"))
		if current == "" {
			v.fieldError("current", msg("change.current_needed"))
		}
		p := h.accounts.Policy()
		violationMessages(v, p.Check(newPassword, confirmation, current, ""), p)
		h.render(w, r, http.StatusOK, "password", v)
		return
	}
	if overlongEmail(email) {
		// No account has it: the service's answer for an unknown address,
		// without asking the service.
		p := h.accounts.Policy()
		ce := &account.ChangeError{CurrentWrong: true, Violations: p.Check(newPassword, confirmation, current, storage.NormaliseEmail(email))}
		h.changeErrors(v, ce, current, "password.current_wrong")
		h.render(w, r, http.StatusOK, "password", v)
		return
	}

	err := h.accounts.ChangePassword(ctx, email, current, newPassword, confirmation, h.meta(r, id))
	switch {
	case h.renderRefusedChange(w, r, v, "password", "password.current_wrong", current, err):
		return
	case err != nil:
		h.internalError(w, r, "voluntary change", err)
		return
	}
	http.Redirect(w, r, link(pathLogin, id, paramNotice, "password_changed"), http.StatusSeeOther)
}

// renderBusy shows the form again, with what was typed but the passwords,
// when the account rules could not check the password in time: the instance
// is overloaded, and the agent may try again in a moment.
func (h *Handler) renderBusy(w http.ResponseWriter, r *http.Request, page string, v *view, err error) {
	h.log.WarnContext(r.Context(), "password attempt shed: its hashes were queued past its budget", "err", err)
	v.formError(msg("error.busy"))
	w.Header().Set("Retry-After", "10")
	h.render(w, r, http.StatusServiceUnavailable, page, v)
}

// renderRefusedChange shows the form again when the account rules refused
// the change (every problem next to its field) or throttled it, and tells
// whether it did.
func (h *Handler) renderRefusedChange(w http.ResponseWriter, r *http.Request, v *view, page, currentWrongKey, current string, err error) bool {
	var ce *account.ChangeError
	switch {
	case errors.As(err, &ce):
		h.changeErrors(v, ce, current, currentWrongKey)
		h.render(w, r, http.StatusOK, page, v)
	case errors.Is(err, account.ErrThrottled):
		v.fieldError("current", msg("error.throttled"))
		h.render(w, r, http.StatusTooManyRequests, page, v)
	case errors.Is(err, account.ErrBusy):
		h.renderBusy(w, r, page, v, err)
	default:
		return false
	}
	return true
}
