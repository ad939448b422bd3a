package main

// Conformance to OIDC Core, Discovery and RFC 6749/6750/7009/7662 where the
// library alone answered otherwise.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// authorizeAnswer is where /authorize (followed within the provider) sent
// the browser: the redirect to the application, parsed (query and fragment
// merged).
func authorizeAnswer(t *testing.T, p *page) url.Values {
	t.Helper()
	loc := p.Location()
	if loc == "" {
		return url.Values{}
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	v := u.Query()
	frag, _ := url.ParseQuery(u.Fragment)
	for k, vs := range frag {
		v[k] = append(v[k], vs...)
	}
	return v
}

// TestUnsupportedAuthorizationParametersAreRefused: OIDC Core 1.0
// §3.1.2.6. The provider supports neither request_uri (discovery:
// request_uri_parameter_supported false; its Request Object would supersede
// the query's values) nor registration: each gets its *_not_supported error
// with the state, where the library served the request as if it were absent.
func TestUnsupportedAuthorizationParametersAreRefused(t *testing.T) {
	e, _, rp1, _ := twoApps(t, "sqlite:"+t.TempDir()+"/idp.db")
	b := newBrowser(t, e.issuer)
	rp1.signIn(t, b)
	for _, c := range []struct{ param, value, want string }{
		{"request_uri", "https://app1.example.fr/request.jwt", "request_uri_not_supported"},
		{"registration", `{"client_name":"x"}`, "registration_not_supported"},
	} {
		p := b.get(rp1.authURL(oauth2.SetAuthURLParam(c.param, c.value)))
		if got := authorizeAnswer(t, p); got.Get("error") != c.want || got.Get("state") != rp1.state || got.Get("code") != "" {
			t.Errorf("%s: status %d, location %q; want error=%s with the state", c.param, p.Status, p.Location(), c.want)
		}
	}
}

// TestPromptSelectAccountAsksTheLoginForm: OIDC Core 1.0 §3.1.2.1,
// prompt=select_account: the OP SHOULD prompt the End-User to select an
// account. A browser holds one session: the login form is where the agent
// chooses, as for prompt=login; a code at once would be no choice made.
func TestPromptSelectAccountAsksTheLoginForm(t *testing.T) {
	e, _, rp1, _ := twoApps(t, "sqlite:"+t.TempDir()+"/idp.db")
	b := newBrowser(t, e.issuer)
	rp1.signIn(t, b)
	p := b.get(rp1.authURL(oauth2.SetAuthURLParam("prompt", "select_account")))
	if got := authorizeAnswer(t, p); got.Get("code") != "" {
		t.Fatalf("prompt=select_account with a session: a code without any account choice (status %d, location %q); want the login page or error=account_selection_required",
			p.Status, p.Location())
	}
}

// TestPromptConsentIsAnsweredByTheHabilitations: OIDC Core 1.0 §3.1.2.1,
// prompt=consent. The provider has no consent page: its applications are
// the agency's own and the habilitations are its access decisions (README,
// "Habilitations"). A request with prompt=consent (which OIDC Core §11 asks
// of one wanting offline_access) is answered as without it, never with
// consent_required, which would lock such an application out.
func TestPromptConsentIsAnsweredByTheHabilitations(t *testing.T) {
	e, _, rp1, _ := twoApps(t, "sqlite:"+t.TempDir()+"/idp.db")
	b := newBrowser(t, e.issuer)
	rp1.signIn(t, b)
	p := b.get(rp1.authURL(oauth2.SetAuthURLParam("prompt", "consent"), oauth2.SetAuthURLParam("scope", "openid offline_access")))
	if got := authorizeAnswer(t, p); got.Get("code") == "" || got.Get("state") != rp1.state {
		t.Fatalf("prompt=consent with a session: status %d, location %q; want a code", p.Status, p.Location())
	}
}

// TestRevocationWithoutTokenIsInvalidRequest: RFC 7009 §2.1, token is
// REQUIRED; a request without it is invalid_request (RFC 6749 §5.2, 400),
// not a 200 that tells the client a token was revoked.
func TestRevocationWithoutTokenIsInvalidRequest(t *testing.T) {
	e, secret1, _, _ := twoApps(t, "sqlite:"+t.TempDir()+"/idp.db")
	resp, body := postForm(t, e, "/revoke", "app1", secret1, url.Values{"token_type_hint": {"refresh_token"}})
	if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Fatalf("revocation without token: %d %v; want 400 invalid_request", resp.StatusCode, body)
	}
	resp, body = postForm(t, e, "/revoke", "app1", secret1, url.Values{"token": {""}})
	if resp.StatusCode != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Fatalf("revocation with an empty token: %d %v; want 400 invalid_request", resp.StatusCode, body)
	}
	// The library's decoder takes the name in any case: so does the check.
	resp, body = postForm(t, e, "/revoke", "app1", secret1, url.Values{"Token": {"unknown"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revocation of an unknown Token: %d %v; want 200", resp.StatusCode, body)
	}
}

// TestRevocationOfAnotherClientsTokenIsInvalidGrant: RFC
// 7009 §2.1 refuses a token issued to another client, but the client did
// authenticate (here, a public client identified by client_id): 401
// invalid_client with a Basic challenge (RFC 6749 §5.2: "Client
// authentication failed") tells it that its credentials are wrong. Want a
// 400 that is not invalid_client (unauthorized_client, say).
func TestRevocationOfAnotherClientsTokenIsInvalidGrant(t *testing.T) {
	e, _, rp1, _ := twoApps(t, "sqlite:"+t.TempDir()+"/idp.db")
	b := newBrowser(t, e.issuer)
	li := rp1.signIn(t, b)
	resp, body := postForm(t, e, "/revoke", "", "", url.Values{"client_id": {"app2"}, "token": {li.token.AccessToken}})
	if resp.StatusCode == http.StatusUnauthorized || body["error"] == "invalid_client" {
		t.Fatalf("app2 revoking app1's token: %d %v, WWW-Authenticate %q; want 400, not invalid_client",
			resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestUnsupportedResponseType: RFC 6749 §4.1.2.1 / §4.2.2.1, a
// response_type the server does not support at all (discovery:
// response_types_supported ["code"]) is unsupported_response_type, not
// unauthorized_client (which says this client is not allowed what others
// are).
func TestUnsupportedResponseType(t *testing.T) {
	e, _, rp1, _ := twoApps(t, "sqlite:"+t.TempDir()+"/idp.db")
	b := newBrowser(t, e.issuer)
	for _, rt := range []string{"token", "id_token", "code+id_token", "foo"} {
		u := strings.Replace(rp1.authURL(), "response_type=code", "response_type="+rt, 1)
		p := b.get(u)
		if got := authorizeAnswer(t, p); got.Get("error") != "unsupported_response_type" || got.Get("state") != rp1.state {
			t.Errorf("response_type=%s: location %q; want error=unsupported_response_type with the state", rt, p.Location())
		}
		// A type that returns a token reads its answer in the fragment
		// (Multiple Response Type Encoding Practices, §5); code's in the query.
		u2, _ := url.Parse(p.Location())
		if wantFragment := rt != "foo"; (u2.Fragment != "") != wantFragment {
			t.Errorf("response_type=%s: location %q; fragment wanted: %v", rt, p.Location(), wantFragment)
		}
	}
}

// TestUserinfoTwoTokenMethodsIsInvalidRequest: RFC 6750 §2 (a client
// MUST NOT use more than one method) and §3.1: such a request is
// invalid_request, 400.
func TestUserinfoTwoTokenMethodsIsInvalidRequest(t *testing.T) {
	e, _, rp1, _ := twoApps(t, "sqlite:"+t.TempDir()+"/idp.db")
	b := newBrowser(t, e.issuer)
	li := rp1.signIn(t, b)
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/userinfo", strings.NewReader(url.Values{"access_token": {li.token.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+li.token.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("userinfo with the token in the header and the body: %d; want 400 invalid_request", resp.StatusCode)
	}
}

// TestEmptyMaxAgeIsOmitted: RFC 6749 §3.1, "Parameters sent without a
// value MUST be treated as if they were omitted from the request." An
// empty max_age is decoded as max_age=0: a fresh session no longer
// completes the request, and prompt=none gets login_required.
func TestEmptyMaxAgeIsOmitted(t *testing.T) {
	e, _, rp1, _ := twoApps(t, "sqlite:"+t.TempDir()+"/idp.db")
	b := newBrowser(t, e.issuer)
	rp1.signIn(t, b)
	p := b.get(rp1.authURL(oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("max_age", "")))
	if got := authorizeAnswer(t, p); got.Get("code") == "" {
		t.Fatalf("prompt=none&max_age= with a session: status %d, location %q; want a code, as without max_age", p.Status, p.Location())
	}
}

// TestInvalidMaxAgeIsRedirected: RFC 6749 §4.1.2.1 (OIDC Core
// §3.1.2.6): only a missing or invalid redirect_uri or client_id keeps the
// error from the client; any other invalid parameter (here max_age that is
// not a non-negative integer) is answered to the registered redirect URI
// with invalid_request and the state. The provider shows its error page,
// so the application (a prompt=none iframe above all) never gets an answer.
func TestInvalidMaxAgeIsRedirected(t *testing.T) {
	e, _, rp1, _ := twoApps(t, "sqlite:"+t.TempDir()+"/idp.db")
	b := newBrowser(t, e.issuer)
	for _, v := range []string{"abc", "-1"} {
		p := b.get(rp1.authURL(oauth2.SetAuthURLParam("max_age", v)))
		got := authorizeAnswer(t, p)
		if !strings.HasPrefix(p.Location(), app1Redirect) || got.Get("error") != "invalid_request" || got.Get("state") != rp1.state {
			t.Errorf("max_age=%s: status %d, location %q; want a redirect to %s with error=invalid_request and the state",
				v, p.Status, p.Location(), app1Redirect)
		}
	}
}
