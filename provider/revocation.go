package provider

import (
	"net/http"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// revocationWithoutHint drops token_type_hint from revocation requests,
// which RFC 7009 §2.1 allows (the server MAY ignore it). Given the hint
// access_token, the library never looks among the refresh tokens: a refresh
// token revoked with that hint got 200 and kept working, where §2.1 says the
// search MUST go on across every token type. RevokeToken cannot make up for
// it: the library first reads the value as an access token, and its
// fallback decryption (AES-CFB, unauthenticated) turns about one random
// refresh token in sixteen into an id and a subject, so the raw value never
// reaches it. Without the hint the library looks for a refresh token first,
// then an access token; an access token costs one lookup by hash more.
//
// A request without a token is invalid_request (400): token is REQUIRED
// (§2.1), and the library's 200 told the client a token was revoked.
func (p *Provider) revocationWithoutHint(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A form that does not parse is left for the library to refuse.
		if r.URL.Path == p.op.RevocationEndpoint().Relative() && r.ParseForm() == nil {
			// Under any spelling, as the library's decoder reads it.
			if !slices.ContainsFunc(valuesOf(r.Form, "token"), func(v string) bool { return v != "" }) {
				op.RevocationRequestError(w, r, oidc.ErrInvalidRequest().WithDescription("token is required"))
				return
			}
			r.Form.Del("token_type_hint")
			r.PostForm.Del("token_type_hint")
		}
		next.ServeHTTP(w, r)
	})
}
