package provider

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// withoutEmptyValues removes from form the values sent without one, and the
// parameters left with none: RFC 6749 §3.1, "parameters sent without a
// value MUST be treated as if they were omitted from the request". The
// library would decode max_age= as max_age=0 (a fresh session no longer
// answers, prompt=none gets login_required) and state=a&state= as a repeat.
func withoutEmptyValues(form url.Values) {
	for name, values := range form {
		kept := values[:0]
		for _, v := range values {
			if v != "" {
				kept = append(kept, v)
			}
		}
		if len(kept) == 0 {
			delete(form, name)
		} else {
			form[name] = kept
		}
	}
}

// authorizationProblem is the error an authorization request gets for a
// parameter the library would ignore or refuse with the wrong answer; nil
// when there is none. It is answered like any refused request
// (refuseAuthorization): to the registered redirect URI with the state,
// since only a bad client_id or redirect_uri keeps an error from the
// application (RFC 6749 §4.1.2.1), which a silent request's iframe waits for.
//   - request_uri and registration (OIDC Core §3.1.2.6, §6.2, §7.2.1): the
//     library knows neither and served the request as if they were absent,
//     though a request object fetched from request_uri would supersede the
//     query's values (discovery says request_uri_parameter_supported:
//     false; request= the library refuses itself);
//   - max_age not a number of seconds: the library's decoder fails before
//     it knows the client, and its answer is the error page;
//   - a response type other than code: the library answers
//     unauthorized_client, which tells a client it lacks what others have;
//     the provider serves no other (discovery: response_types_supported).
func authorizationProblem(form url.Values) *oidc.Error {
	switch {
	case sent(form, "request_uri"):
		return &oidc.Error{ErrorType: "request_uri_not_supported",
			Description: "request_uri is not supported: send the request's parameters themselves"}
	case sent(form, "registration"):
		return &oidc.Error{ErrorType: "registration_not_supported",
			Description: "registration is not supported: clients are registered by the administrators"}
	}
	if v := onlyValue(form, "max_age"); v != "" && !isSeconds(v) {
		return oidc.ErrInvalidRequest().WithDescription("max_age must be a whole number of seconds")
	}
	if rt := onlyValue(form, "response_type"); rt != "" && rt != string(oidc.ResponseTypeCode) {
		return &oidc.Error{ErrorType: "unsupported_response_type",
			Description: "only the authorization code flow is served: response_type=code"}
	}
	return nil
}

// sent: form gives name a value, under any spelling (valuesOf).
func sent(form url.Values, name string) bool {
	return len(valuesOf(form, name)) > 0
}

// isSeconds: v is what the library decodes into max_age (a uint), written
// as digits only (strconv takes no sign here, nor spaces).
func isSeconds(v string) bool {
	_, err := strconv.ParseUint(v, 10, strconv.IntSize)
	return err == nil
}

// defaultResponseMode is where an error to the response type rt goes when
// the request names no response mode: the query for code (and for a type
// unknown to the multiple-response-type rules), the fragment for any type
// that returns a token (OAuth 2.0 Multiple Response Type Encoding
// Practices, §2.1 and §5), whose client reads its answer there.
func defaultResponseMode(rt string) oidc.ResponseMode {
	for _, t := range strings.Fields(rt) {
		if t == "token" || t == "id_token" {
			return oidc.ResponseModeFragment
		}
	}
	return oidc.ResponseModeQuery
}
