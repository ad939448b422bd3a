package provider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// invalidToken is RFC 6750's error for an access token that is unknown,
// revoked, expired or otherwise no longer honoured.
const invalidToken = "invalid_token"

// challenge is a WWW-Authenticate value of the scheme, the issuer its realm.
func (p *Provider) challenge(scheme string) string {
	return fmt.Sprintf("%s realm=%q", scheme, p.cfg.Issuer)
}

// userinfoAnswers gives /userinfo's refusals the form RFC 6750 §3 and OIDC
// Core 5.3.3 require. The library answers a missing or unreadable token 401
// without WWW-Authenticate, and every refusal of SetUserinfoFromToken 403,
// which tells a client its token is fine but not enough: it keeps a token
// that will never work again instead of getting a new one. Here:
//   - no token at all: 401 with a bare Bearer challenge (§3.1: no error
//     code for a request without authentication);
//   - a token that is unreadable or refused: 401 with error="invalid_token";
//   - a database fault (server_error): 500, the token is not at fault;
//   - a token both in the header and in the body: 400 invalid_request (§2
//     allows one method per request, §3.1), where the library took the
//     header's.
func (p *Provider) userinfoAnswers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != p.op.UserinfoEndpoint().Relative() {
			next.ServeHTTP(w, r)
			return
		}
		inHeader, inForm := bearerInHeader(r), accessTokenInForm(r)
		if inHeader && inForm {
			w.Header().Set("WWW-Authenticate", p.challenge("Bearer")+`, error="invalid_request"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"send the access token once: in the Authorization header or in the body"}`))
			return
		}
		presented := inHeader || inForm
		rec := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		switch {
		case rec.status == http.StatusForbidden && errorCode(rec.body.Bytes()) == string(oidc.ServerError):
			rec.status = http.StatusInternalServerError
		case rec.status == http.StatusUnauthorized && !presented:
			rec.header.Set("WWW-Authenticate", p.challenge("Bearer"))
		case rec.status == http.StatusUnauthorized, rec.status == http.StatusForbidden:
			rec.status = http.StatusUnauthorized
			rec.header.Set("WWW-Authenticate", p.challenge("Bearer")+`, error="`+invalidToken+`"`)
		}
		rec.writeTo(w)
	})
}

// bearerInHeader: the request carries an access token where the library
// looks first, the Authorization header with the Bearer scheme.
func bearerInHeader(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	return len(h) > len(oidc.PrefixBearer) && strings.EqualFold(h[:len(oidc.PrefixBearer)], oidc.PrefixBearer)
}

// accessTokenInForm: the request carries an access_token parameter, where
// the library looks without the header.
func accessTokenInForm(r *http.Request) bool {
	// ParseForm keeps what it parsed: the library's own call reads nothing
	// again.
	return r.ParseForm() == nil && r.Form.Get("access_token") != ""
}

// errorCode is the OAuth error of a JSON error answer ("" for any other).
func errorCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error
}

// clientEndpointAnswers adds what OAuth requires of the answers of the
// endpoints a client authenticates at (token, introspection, revocation),
// which the library leaves out:
//   - RFC 6749 §5.2 (which RFC 7662 and RFC 7009 refer to): a client that
//     failed to authenticate with the Authorization header gets 401 with a
//     WWW-Authenticate challenge of the scheme it used. HTTP wants a
//     challenge with every 401 (RFC 9110 §15.5.2), and Basic is the only
//     header scheme these endpoints take (client_secret_post is in the form,
//     private_key_jwt is not offered), so every 401 of theirs gets Basic.
//     Every such 401 has one body, invalid_client without its cause, which
//     is logged: the library tells an unknown client ("unknown client") from
//     a wrong secret at the token endpoint, which lists the registered
//     client ids to anyone, and answers introspection's in plain text where
//     RFC 7662 §2.3 wants RFC 6749 §5.2's JSON.
//   - RFC 6749 §5.1: a token answer carries Pragma: no-cache besides
//     Cache-Control: no-store, for HTTP/1.0 caches.
//   - RFC 7009 §2.2.1: a revocation the server could not carry out (the
//     library's 500, server_error: the database failed) is 503 with
//     Retry-After, the status that tells the client to assume the token
//     still exists and retry after a delay; the JSON body stays.
func (p *Provider) clientEndpointAnswers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		revocation := false
		switch r.URL.Path {
		case p.op.TokenEndpoint().Relative():
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Pragma", "no-cache")
		case p.op.RevocationEndpoint().Relative():
			revocation = true
		case p.op.IntrospectionEndpoint().Relative():
		default:
			next.ServeHTTP(w, r) // every other request of the provider, unwrapped
			return
		}
		next.ServeHTTP(&clientAnswer{ResponseWriter: w, p: p, r: r, revocation: revocation}, r)
	})
}

// revocationRetryAfter is the Retry-After, in seconds, of a revocation that
// met a database fault: long enough for a connection to come back, short
// enough that a client revoking at logout is still there to retry.
const revocationRetryAfter = "10"

// clientAuthFailed is the body of every client authentication failure.
var clientAuthFailed = []byte(`{"error":"invalid_client","error_description":"client authentication failed"}`)

// clientAnswer corrects a status of clientEndpointAnswers as it is written.
type clientAnswer struct {
	http.ResponseWriter
	p          *Provider
	r          *http.Request
	revocation bool // the revocation endpoint's answer
	replaced   bool // the body was written here: the library's is only logged
}

func (a *clientAnswer) WriteHeader(status int) {
	switch {
	case status == http.StatusUnauthorized:
		a.Header().Set("WWW-Authenticate", a.p.challenge("Basic"))
		a.Header().Set("Content-Type", "application/json")
		a.ResponseWriter.WriteHeader(status)
		_, _ = a.ResponseWriter.Write(clientAuthFailed)
		a.replaced = true
		return
	case status == http.StatusInternalServerError && a.revocation:
		status = http.StatusServiceUnavailable
		a.Header().Set("Retry-After", revocationRetryAfter)
	}
	a.ResponseWriter.WriteHeader(status)
}

func (a *clientAnswer) Write(b []byte) (int, error) {
	if a.replaced {
		a.p.log.InfoContext(a.r.Context(), "client authentication failed",
			"path", a.r.URL.Path, "cause", strings.TrimSpace(string(b)))
		return len(b), nil
	}
	return a.ResponseWriter.Write(b)
}
