package provider

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// TestEndpointParams: the parameters the one-value rule covers are read
// from the library's request structs, so that they follow it.
func TestEndpointParams(t *testing.T) {
	for _, tc := range []struct {
		what string
		got  []string
		want []string
	}{
		{"authorize", endpointParams[oidc.AuthRequest](), []string{"scope", "response_type", "client_id", "redirect_uri",
			"state", "nonce", "response_mode", "prompt", "max_age", "id_token_hint", "code_challenge", "request"}},
		{"end_session", endpointParams[oidc.EndSessionRequest](), []string{"id_token_hint", "logout_hint", "client_id",
			"post_logout_redirect_uri", "state", "ui_locales"}},
	} {
		for _, name := range tc.want {
			if !slices.Contains(tc.got, name) {
				t.Errorf("%s: %q missing from %v", tc.what, name, tc.got)
			}
		}
		if slices.Contains(tc.got, "resource") || slices.Contains(tc.got, "") {
			t.Errorf("%s: %v holds a parameter the library does not decode", tc.what, tc.got)
		}
	}
}

// TestRepeatedParam: only the endpoint's parameters must come once (RFC
// 6749 §3.1: the others MUST be ignored, and RFC 8707's resource may
// repeat), under any spelling the library's decoder takes for them.
func TestRepeatedParam(t *testing.T) {
	var decoded oidc.EndSessionRequest
	if err := newFuzzProvider(t).op.Decoder().Decode(&decoded, url.Values{"STATE": {"x"}}); err != nil || decoded.State != "x" {
		t.Fatalf("the library's decoder no longer takes STATE for state (%v, %+v): valuesOf need not fold case", err, decoded)
	}
	defined := append(endpointParams[oidc.EndSessionRequest](), "csrf", "confirm")
	for _, tc := range []struct {
		query string
		want  string // "" for no repeat
	}{
		{"state=a&client_id=rh", ""},
		{"resource=https%3A%2F%2Fapi1&resource=https%3A%2F%2Fapi2&state=a", ""},
		{"utm_source=a&utm_source=b", ""},
		{"=&=", ""},
		{"=&=&state=a&state=b", "state"},
		{"state=a&State=b", "state"},
		{"STATE=a&state=b", "state"},
		{"id_token_hint=x&id_token_hint=", "id_token_hint"},
		{"csrf=a&csrf=b", "csrf"},
	} {
		form, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		name, repeated := repeatedParam(form, defined)
		if name != tc.want || repeated != (tc.want != "") {
			t.Errorf("%s: %q, %v; want %q", tc.query, name, repeated, tc.want)
		}
	}
}

// TestAuthorizeParameterInQueryAndBody: a POST to /authorize that gives a
// parameter in the query and again in the body has sent it twice.
func TestAuthorizeParameterInQueryAndBody(t *testing.T) {
	p := newFuzzProvider(t)
	h := p.OneValueEach(p.Handler())
	body := url.Values{"client_id": {"rh"}, "redirect_uri": {fuzzRedirect}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"b"}}
	req := httptest.NewRequest(http.MethodPost, fuzzIssuer+"/authorize?state=a", strings.NewReader(body.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	loc, err := url.Parse(rec.Header().Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), fuzzRedirect) || loc.Query().Get("error") != "invalid_request" {
		t.Fatalf("state in the query and the body: %d, location %q; want invalid_request at the redirect URI", rec.Code, rec.Header().Get("Location"))
	}
}
