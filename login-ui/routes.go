package loginui

import (
	"net/http"

	"github.com/gorilla/mux"
)

// Routes registers the pages on r, beside the OpenID provider's endpoints.
// Every POST goes through postForm: body size limit, form parsing, CSRF.
func (h *Handler) Routes(r *mux.Router) {
	routes := []struct {
		method  string
		path    string
		handler http.HandlerFunc
	}{
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
	for _, rt := range routes {
		r.Handle(rt.path, SecurityHeaders(rt.handler, h.cfg.SecureCookies)).Methods(rt.method)
	}
}

// The pages' paths.
const (
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
