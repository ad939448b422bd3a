package loginui

import (
	"crypto/hmac"
	"errors"
	"net/http"
	"strings"

	"github.com/caf-extranet/idp/storage"
)

// A forced change can be posted once its restricted session has ended. Two
// things end it, and they call for opposite advice:
//   - the session lapsed (30 minutes after the provisional login) or
//     « Annuler » in another tab ended it: nothing was changed, and the
//     agent must log in again with the provisional password;
//   - the first click of a double click on « Valider » made the change and
//     ended the session while this click was on its way: the password is
//     changed, and the login page goes on with the session the first answer
//     gave the browser, or shows the form.
// The agent's pending flag tells them apart. The session that named the
// agent is gone, so the form names it itself, in a field signed for the
// browser: nobody else's form, and no made-up id, learns an agent's flag.

// agentFieldName is the forced change form's hidden field naming its agent.
const agentFieldName = "agent"

// maxAgentField bounds the posted field: an id and a hex HMAC-SHA256.
const maxAgentField = 256

// agentField is the value of the form's agent field for the agent userID,
// signed for the browser whose CSRF token is browserToken.
func (h *Handler) agentField(browserToken, userID string) string {
	return userID + "." + h.captcha.mac("forced change agent\x00"+browserToken+"\x00"+userID)
}

// formAgent is the agent the posted form names, "" when the field is
// missing or was not signed for this browser.
func (h *Handler) formAgent(r *http.Request) string {
	token, ok := h.browserToken(r)
	v := r.PostForm.Get(agentFieldName)
	i := strings.LastIndexByte(v, '.')
	if !ok || i <= 0 || len(v) > maxAgentField {
		return ""
	}
	if !hmac.Equal([]byte(h.agentField(token, v[:i])), []byte(v)) {
		return ""
	}
	return v[:i]
}

// changeWithoutSession answers a forced change posted by a browser without
// a restricted session (see above): to the login page, with the lapsed
// change's notice when the agent the form names still has to change its
// password. A browser holding another session goes there as before: the
// login page decides.
func (h *Handler) changeWithoutSession(w http.ResponseWriter, r *http.Request, id string, b browserSession) {
	userID := ""
	if !b.Found {
		userID = h.formAgent(r)
	}
	if userID == "" {
		http.Redirect(w, r, link(pathLogin, id), http.StatusSeeOther)
		return
	}
	u, err := h.accounts.User(r.Context(), userID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.internalError(w, r, "reading the agent of a lapsed change", err)
		return
	}
	if err != nil || !u.PendingPasswordChange || u.Disabled {
		http.Redirect(w, r, link(pathLogin, id), http.StatusSeeOther)
		return
	}
	// The login page would only say « Demande de connexion expirée » for a
	// request that lapsed too (it lives as long as the session, from
	// earlier): the agent logs in without it.
	_, lapsed, err := h.pendingRequest(r, id)
	if err != nil {
		h.internalError(w, r, "loading auth request", err)
		return
	}
	if lapsed {
		id = ""
	}
	h.log.InfoContext(r.Context(), "forced change posted after its restricted session ended: nothing changed")
	http.Redirect(w, r, link(pathLogin, id, paramNotice, "change_lapsed"), http.StatusSeeOther)
}

// pendingRequest reads the auth request id for this browser: nil without
// one (id ""), and lapsed when it expired or went (storage.ErrNotFound).
func (h *Handler) pendingRequest(r *http.Request, id string) (ar *storage.AuthRequest, lapsed bool, err error) {
	if id == "" {
		return nil, false, nil
	}
	read, err := h.authRequest(r, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	return &read, false, nil
}
