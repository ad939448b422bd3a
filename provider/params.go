package provider

import (
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/caf-extranet/idp/storage"
)

// maxParamBytes bounds a posted authorization or end-session request: the
// largest legitimate one is a few kilobytes.
const maxParamBytes = 64 << 10

// OneValueEach wraps the authorization and end-session endpoints (next is
// what serves them): a request that sends a parameter more than once is
// invalid_request (RFC 6749 §3.1), never "the last one wins". The library
// decodes the last value while a wrapper may read the first: at
// /end_session, "?id_token_hint=x&id_token_hint=" was a logout without a
// hint that the confirmation page took for one with a hint.
func (p *Provider) OneValueEach(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxParamBytes)
		// Answered here: a second ParseForm downstream would report no
		// error and go on with what the first could read.
		if err := r.ParseForm(); err != nil {
			op.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("the request's parameters cannot be read").WithParent(err), p.log)
			return
		}
		name, repeated := repeatedParam(r.Form)
		if !repeated {
			next.ServeHTTP(w, r)
			return
		}
		// The name came with the request: logged (cut short), never sent back.
		p.log.InfoContext(r.Context(), "request refused: a parameter sent more than once",
			"path", r.URL.Path, "parameter", name[:min(len(name), 64)])
		e := oidc.ErrInvalidRequest().WithDescription("a parameter was sent more than once")
		if r.URL.Path == p.op.AuthorizationEndpoint().Relative() {
			p.refuseAuthorization(w, r, e)
			return
		}
		op.RequestError(w, r, e, p.log)
	})
}

// repeatedParam is the first name, in sorted order, given more than once in
// form. repeated says whether there is one: the empty name is a name too,
// and "&=&=" sorts first. A parameter sent both in the query and in the
// body counts twice.
func repeatedParam(form url.Values) (name string, repeated bool) {
	for _, name := range slices.Sorted(maps.Keys(form)) {
		if len(form[name]) > 1 {
			return name, true
		}
	}
	return "", false
}

// refuseAuthorization answers e to an authorization request that repeats a
// parameter (RFC 6749 §4.1.2.1). The error goes to the redirect URI only
// when client_id and redirect_uri were each sent once and name a registered
// one of that client, the way response_mode asks; otherwise the agent gets
// the error page. A repeated state or response_mode is left out of the
// answer: choosing one of the values is what the rule forbids.
func (p *Provider) refuseAuthorization(w http.ResponseWriter, r *http.Request, e *oidc.Error) {
	a := &authRequest{r: storage.AuthRequest{
		ClientID:     onlyValue(r.Form, "client_id"),
		RedirectURI:  onlyValue(r.Form, "redirect_uri"),
		ResponseType: onlyValue(r.Form, "response_type"),
		ResponseMode: onlyValue(r.Form, "response_mode"),
		State:        onlyValue(r.Form, "state"),
	}}
	if !p.registeredRedirect(r, a) {
		op.AuthRequestError(w, r, nil, e, p.op)
		return
	}
	if err := p.authRequestError(w, r, a, e); err != nil {
		op.RequestError(w, r, oidc.ErrServerError().WithParent(err), p.log)
	}
}

// onlyValue is the parameter's value when it was sent once, "" otherwise.
func onlyValue(form url.Values, name string) string {
	if len(form[name]) != 1 {
		return ""
	}
	return form[name][0]
}

// registeredRedirect: a's redirect URI is one the library would redirect
// a's client's answers to.
func (p *Provider) registeredRedirect(r *http.Request, a *authRequest) bool {
	if a.r.ClientID == "" || a.r.RedirectURI == "" {
		return false
	}
	c, err := p.storage.GetClientByClientID(r.Context(), a.r.ClientID)
	if err != nil {
		return false
	}
	return op.ValidateAuthReqRedirectURI(c, a.r.RedirectURI, a.GetResponseType()) == nil
}
