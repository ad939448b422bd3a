package loginui

import (
	"errors"
	"net/http"

	"github.com/caf-extranet/idp/storage"
)

// notHabilitatedDescription is the error_description of the access_denied a
// relying application gets for an agent without a habilitation.
const notHabilitatedDescription = "the agent is not habilitated for this application"

// renderNotHabilitated explains to an authenticated agent that the
// application it came from is restricted and it holds no habilitation for
// it, and whom to ask. The relying application learns it (access_denied)
// only when the agent chooses to go back.
func (h *Handler) renderNotHabilitated(w http.ResponseWriter, r *http.Request, authRequestID string) {
	ctx := r.Context()
	name := ""
	if ar, err := h.authRequest(r, authRequestID); err == nil {
		if c, err := h.requests.Client(ctx, ar.ClientID); err == nil {
			name = c.Name
		}
	}
	h.renderMessage(w, r, http.StatusForbidden, msg("denied.title"), messagePage{
		Paragraphs: []message{msg("denied.text", name), msg("denied.advice")},
		Links: []pageLink{
			{Href: link(pathDenied, authRequestID), Text: msg("denied.back")},
			{Href: pathSpace, Text: msg("link.portal")},
		},
	})
}

// deniedReturn is GET /login/denied: back to the relying application with
// access_denied; the auth request ends there.
func (h *Handler) deniedReturn(w http.ResponseWriter, r *http.Request) {
	id, ok := authRequestParam(r)
	if !ok || id == "" {
		h.renderExpired(w, r)
		return
	}
	// Only the request's own browser may end it (its state goes back).
	_, err := h.authRequest(r, id)
	if err == nil {
		err = h.requests.AnswerError(h.endingBinding(w, r, id), r, id, "access_denied", notHabilitatedDescription)
	}
	if errors.Is(err, storage.ErrNotFound) {
		h.renderExpired(w, r)
		return
	}
	if err != nil {
		h.internalError(w, r, "denied return", err)
	}
}
