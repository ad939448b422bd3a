package loginui

import (
	"net/http"

	"github.com/gorilla/mux"
)

// route is one page: a method on a path.
type route struct {
	method  string
	path    string
	handler http.HandlerFunc
}

// routes are the pages. Every POST goes through postForm: body size limit,
// form parsing, CSRF.
func (h *Handler) routes() []route {
	return []route{
		// The procedure sends agents to the portal's bare address
		// (« via l'adresse services.caf.fr »): the login page decides from
		// there (the form, or the secure space for a live session).
		{http.MethodGet, pathRoot, h.siteRoot},
		{http.MethodGet, pathLogin, h.loginPage},
		{http.MethodPost, pathLogin, h.postForm(h.loginSubmit)},
		{http.MethodGet, pathForgot, h.forgotPage},
		{http.MethodPost, pathForgot, h.postForm(h.forgotSubmit)},
		{http.MethodGet, pathForgotSent, h.forgotSentPage},
		{http.MethodGet, pathChange, h.changePage},
		{http.MethodPost, pathChange, h.postForm(h.changeSubmit)},
		{http.MethodGet, pathPassword, h.passwordPage},
		{http.MethodPost, pathPassword, h.postForm(h.passwordSubmit)},
		{http.MethodGet, pathDenied, h.deniedReturn},
		{http.MethodGet, pathSpace, h.spacePage},
		{http.MethodPost, pathLogout, h.postForm(h.logoutSubmit)},
		{http.MethodGet, pathStylesheet, h.stylesheet},
	}
}

// Routes registers the pages on r, beside the OpenID provider's endpoints.
func (h *Handler) Routes(r *mux.Router) {
	for _, rt := range h.routes() {
		r.Handle(rt.path, SecurityHeaders(rt.handler, h.cfg.SecureCookies)).Methods(rt.method)
	}
}

// allowedMethods lists, for each page's path, its methods as the Allow
// header of a 405 writes them. Built once (New): every request to the
// OpenID endpoints goes through the catch-all that reads it.
func allowedMethods(routes []route) map[string]string {
	allow := map[string]string{}
	for _, rt := range routes {
		if allow[rt.path] != "" {
			allow[rt.path] += ", "
		}
		allow[rt.path] += rt.method
	}
	return allow
}

// siteRoot is GET /: the login page.
func (h *Handler) siteRoot(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, pathLogin, http.StatusSeeOther)
}

// The pages' paths.
const (
	pathRoot       = "/"
	pathLogin      = "/login"
	pathForgot     = "/login/forgot"
	pathForgotSent = "/login/forgot/sent"
	pathChange     = "/login/change"
	pathPassword   = "/login/password"
	pathDenied     = "/login/denied"
	pathSpace      = "/espace"
	pathLogout     = "/logout"
	pathStylesheet = "/static/style.css"
)
