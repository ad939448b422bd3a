package provider

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/caf-extranet/idp/storage"
)

// maxParamBytes bounds a posted authorization or end-session request: the
// largest legitimate one is a few kilobytes.
const maxParamBytes = 64 << 10

// OneValueEach wraps the authorization and end-session endpoints (next is
// what serves them): a request that sends one of the endpoint's parameters
// more than once is invalid_request (RFC 6749 §3.1), never "the last one
// wins". The library decodes the last value while a wrapper may read the
// first: at /end_session, "?id_token_hint=x&id_token_hint=" was a logout
// without a hint that the confirmation page took for one with a hint. The
// endpoint's parameters are those the library decodes (endpointParams) and
// own, those next reads itself (the confirmation form's fields). Any other
// is ignored, repeated or not: RFC 6749 §3.1 says the server MUST ignore
// the parameters it does not know, RFC 8707's resource may be repeated,
// and nothing here reads them.
func (p *Provider) OneValueEach(next http.Handler, own ...string) http.Handler {
	authorize := append(endpointParams[oidc.AuthRequest](), own...)
	endSession := append(endpointParams[oidc.EndSessionRequest](), own...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxParamBytes)
		// Answered here: a second ParseForm downstream would report no
		// error and go on with what the first could read.
		if err := r.ParseForm(); err != nil {
			op.RequestError(w, r, oidc.ErrInvalidRequest().WithDescription("the request's parameters cannot be read").WithParent(err), p.log)
			return
		}
		authorization := r.URL.Path == p.op.AuthorizationEndpoint().Relative()
		defined := endSession
		if authorization {
			defined = authorize
			withoutEmptyValues(r.Form)
		}
		name, repeated := repeatedParam(r.Form, defined)
		if !repeated {
			if authorization {
				if e := authorizationProblem(r.Form); e != nil {
					p.log.InfoContext(r.Context(), "authorization request refused", "error", e.ErrorType, "description", e.Description)
					p.refuseAuthorization(w, r, e)
					return
				}
			}
			next.ServeHTTP(w, r)
			return
		}
		p.log.InfoContext(r.Context(), "request refused: a parameter sent more than once",
			"path", r.URL.Path, "parameter", name)
		e := oidc.ErrInvalidRequest().WithDescription("a parameter was sent more than once")
		if authorization {
			p.refuseAuthorization(w, r, e)
			return
		}
		op.RequestError(w, r, e, p.log)
	})
}

// endpointParams are the parameters the library decodes into a request of
// type T, read from the struct so that the list follows the library: the
// names its decoder (zitadel/schema) takes from the fields' schema tags, or
// a field's own name without one.
func endpointParams[T any]() []string {
	t := reflect.TypeFor[T]()
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("schema"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

// repeatedParam is the first of defined that form gives more than once,
// with repeated saying whether there is one. A parameter sent both in the
// query and in the body counts twice, and so does one sent under two
// spellings the decoder takes for the same (valuesOf).
func repeatedParam(form url.Values, defined []string) (name string, repeated bool) {
	for _, name := range defined {
		if len(valuesOf(form, name)) > 1 {
			return name, true
		}
	}
	return "", false
}

// valuesOf is every value form gives the parameter name, under any
// spelling: the library's decoder matches names regardless of case
// (strings.EqualFold), so State=a&state=b is state twice to it, the value
// it keeps depending on the order of a map.
func valuesOf(form url.Values, name string) []string {
	var values []string
	for k, v := range form {
		if strings.EqualFold(k, name) {
			values = append(values, v...)
		}
	}
	return values
}

// refuseAuthorization answers e to an authorization request refused before
// the library reads it: a repeated parameter, or authorizationProblem's
// (RFC 6749 §4.1.2.1). The error goes to the redirect URI only
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
	if a.r.ResponseMode == "" {
		a.r.ResponseMode = string(defaultResponseMode(a.r.ResponseType))
	}
	if !p.registeredRedirect(r, a) {
		op.AuthRequestError(w, r, nil, e, p.op)
		return
	}
	if err := p.authRequestError(w, r, a, e); err != nil {
		op.RequestError(w, r, oidc.ErrServerError().WithParent(err), p.log)
	}
}

// onlyValue is the parameter's value when it was sent once, under any
// spelling (valuesOf); "" otherwise.
func onlyValue(form url.Values, name string) string {
	values := valuesOf(form, name)
	if len(values) != 1 {
		return ""
	}
	return values[0]
}

// registeredRedirect: a's redirect URI is one the library would redirect
// a's client's answers to. It is checked as for the code flow whatever the
// response type asked: only an error goes there, and the library's stricter
// rule for the other types (no http) guards the tokens they would carry.
func (p *Provider) registeredRedirect(r *http.Request, a *authRequest) bool {
	if a.r.ClientID == "" || a.r.RedirectURI == "" {
		return false
	}
	c, err := p.storage.GetClientByClientID(r.Context(), a.r.ClientID)
	if err != nil {
		return false
	}
	return op.ValidateAuthReqRedirectURI(c, a.r.RedirectURI, oidc.ResponseTypeCode) == nil
}
