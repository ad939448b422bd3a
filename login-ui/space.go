package loginui

import (
	_ "embed" // the stylesheet
	"net/http"

	"github.com/caf-extranet/idp/storage"
)

// spacePageData is the secure space's own content.
type spacePageData struct {
	User    storage.User
	Clients []storage.Client
}

// spacePage is GET /espace, « l'espace sécurisé du portail »: who is logged
// in, the relying applications, the password change and the logout.
func (h *Handler) spacePage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	b, err := h.currentSession(ctx, r)
	if err != nil {
		h.internalError(w, r, "secure space", err)
		return
	}
	if b.changing() {
		http.Redirect(w, r, pathChange, http.StatusSeeOther)
		return
	}
	if !b.active() {
		http.Redirect(w, r, pathLogin, http.StatusSeeOther)
		return
	}
	clients, err := h.requests.ClientsFor(ctx, b.User.ID)
	if err != nil {
		h.internalError(w, r, "listing applications", err)
		return
	}
	v := newView(msg("space.title"), "")
	if r.URL.Query().Get(paramNotice) == "password_changed" {
		// A forced change whose request lapsed meanwhile ends here: the
		// application cannot be answered, the agent goes on from here.
		v.Notice = msg("space.changed")
	}
	v.Data = spacePageData{User: b.User, Clients: clients}
	h.render(w, r, http.StatusOK, "space", v)
}

// logoutSubmit is POST /logout (« Se déconnecter » of the secure space,
// « Annuler » of the forced change): the session ends here and the login
// page says so, for the auth request the browser was on, if any, so that
// « Annuler » leads back to the login of the same application.
func (h *Handler) logoutSubmit(w http.ResponseWriter, r *http.Request) {
	id, _ := authRequestParam(r)
	if err := h.endBrowserSession(r.Context(), r); err != nil {
		h.internalError(w, r, "logout", err)
		return
	}
	h.clearSessionCookie(w)
	http.Redirect(w, r, link(pathLogin, id, paramNotice, "logged_out"), http.StatusSeeOther)
}

//go:embed static/style.css
var styleCSS []byte

// stylesheet is GET /static/style.css. It may be cached for a day: it only
// changes with a deployment, and a stale copy still styles the pages.
func (h *Handler) stylesheet(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(styleCSS)
}
