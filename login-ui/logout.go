package loginui

import (
	"net/http"
)

// endSessionParams are the parameters of the end-session endpoint a
// confirmed logout carries on (OpenID Connect RP-Initiated Logout 1.0, §2).
var endSessionParams = []string{"client_id", "post_logout_redirect_uri", "state", "ui_locales", "logout_hint"}

// logoutPage is the confirmation page's content.
type logoutPage struct {
	Fields []hiddenField
	Cancel string
}

type hiddenField struct{ Name, Value string }

// ConfirmLogout wraps the provider's end-session endpoint (next): a request
// without an id_token_hint, from a browser with a session, is asked first
// (RP-Initiated Logout 1.0, §2: the OP must ask when it cannot tell the
// request came from an application the agent uses), so that a link or an
// image on any site cannot log the agent out. The confirmation posts back
// with the parameters and the CSRF token; the provider then ends the
// session. A request with a hint goes on (the library checks it), and so
// does one from a browser without a session: there is nothing to end.
func (h *Handler) ConfirmLogout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			h.renderMessage(w, r, http.StatusBadRequest, msg("bad_form.title"), messagePage{
				Paragraphs: []message{msg("bad_form.text")},
				Links:      []pageLink{{Href: pathLogin, Text: msg("link.portal")}},
			})
			return
		}
		confirmed := r.Method == http.MethodPost && r.PostForm.Get("confirm") == "1" && h.validCSRF(r)
		if r.Form.Get("id_token_hint") != "" || confirmed || !h.MayHaveSession(r) {
			next.ServeHTTP(w, r)
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
