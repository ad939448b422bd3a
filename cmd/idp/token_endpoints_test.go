package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestRevocationWithAWrongHintRevokes: RFC 7009 §2.1, a server that does
// not find the token under its token_type_hint MUST search the other types.
// A refresh token revoked with hint access_token ends its grant; an access
// token revoked with hint refresh_token ends.
func TestRevocationWithAWrongHintRevokes(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil)
		e.addAgent(agentEmail, "Claire Dupont", "", agentPass)
		secret := e.addClient("app1", app1Redirect, false)
		rp := newRP(t, e, "app1", secret, app1Redirect, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
		b := newBrowser(t, e.issuer)

		li := rp.mustExchange(rp.callback(login(t, b, b.get(rp.authURL()), agentEmail, agentPass).Location()))
		resp, body := postForm(t, e, "/revoke", "app1", secret,
			url.Values{"token": {li.token.RefreshToken}, "token_type_hint": {"access_token"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %d %v", resp.StatusCode, body)
		}
		if _, err := refreshErr(rp, li.token.RefreshToken); err == nil {
			t.Fatal("the refresh token still works after a 200 from the revocation endpoint (token_type_hint=access_token)")
		}
		if introspect(t, e, "app1", secret, li.token.AccessToken) {
			t.Fatal("the grant's access token is still active after its refresh token was revoked")
		}

		li = rp.mustExchange(rp.callback(b.get(rp.authURL()).Location()))
		resp, body = postForm(t, e, "/revoke", "app1", secret,
			url.Values{"token": {li.token.AccessToken}, "token_type_hint": {"refresh_token"}})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %d %v", resp.StatusCode, body)
		}
		if introspect(t, e, "app1", secret, li.token.AccessToken) {
			t.Fatal("the access token is still active after a 200 from the revocation endpoint (token_type_hint=refresh_token)")
		}
	})
}

// userinfo asks /userinfo with the Authorization header auth ("": none).
func userinfo(t *testing.T, e *testEnv, auth string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/userinfo", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestUserinfoInvalidTokenIs401: RFC 6750 §3 and §3.1, OIDC Core 5.3.3. A
// revoked, unknown or no longer honoured access token is 401 with
// WWW-Authenticate: Bearer error="invalid_token", which tells the client to
// get a new one (a pending agent's refresh is refused too, so the client
// sends the agent to the login, where the change form waits). A request
// without any token is 401 with a Bearer challenge and no error code.
func TestUserinfoInvalidTokenIs401(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, secret1, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		wantInvalid := func(what string, resp *http.Response) {
			t.Helper()
			ch := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `error="invalid_token"`) {
				t.Fatalf("userinfo with %s: status %d, WWW-Authenticate %q", what, resp.StatusCode, ch)
			}
		}

		li := rp1.signIn(t, b)
		if resp := userinfo(t, e, "Bearer "+li.token.AccessToken); resp.StatusCode != http.StatusOK || resp.Header.Get("WWW-Authenticate") != "" {
			t.Fatalf("userinfo with a live token: status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		revoke(t, e, "app1", secret1, li.token.AccessToken)
		wantInvalid("a revoked token", userinfo(t, e, "Bearer "+li.token.AccessToken))
		wantInvalid("an unknown token", userinfo(t, e, "Bearer not-a-token"))

		// The gate: the token is stored and unexpired, the agent pending.
		li = rp1.mustExchange(rp1.callback(b.get(rp1.authURL()).Location()))
		agent, err := e.srv.store.GetUserByEmail(e.ctx, agentEmail)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.srv.store.SetPendingPasswordChange(e.ctx, agent.ID, true, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		wantInvalid("a pending agent's token", userinfo(t, e, "Bearer "+li.token.AccessToken))
		if _, err := rp1.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(li.token)); err == nil {
			t.Fatal("userinfo for a pending agent")
		}

		for _, auth := range []string{"", "Basic " + "YXBwMTp4"} {
			resp := userinfo(t, e, auth)
			if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusUnauthorized ||
				!strings.HasPrefix(ch, "Bearer") || strings.Contains(ch, "error=") {
				t.Fatalf("userinfo without a token (Authorization %q): status %d, WWW-Authenticate %q", auth, resp.StatusCode, ch)
			}
		}
	})
}

// TestTokenResponsesAreNotCached: RFC 6749 §5.1, a token response carries
// Cache-Control: no-store and Pragma: no-cache (for HTTP/1.0 caches), and so
// does an error of the token endpoint.
func TestTokenResponsesAreNotCached(t *testing.T) {
	e, _, _, rp2 := twoApps(t, "sqlite:"+t.TempDir()+"/idp.db")
	b := newBrowser(t, e.issuer)
	code := rp2.callback(login(t, b, b.get(rp2.authURL()), agentEmail, agentPass).Location())
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {app2Redirect}, "client_id": {"app2"}, "code_verifier": {rp2.pkce}}
	resp, body := postForm(t, e, "/oauth/token", "", "", form)
	if resp.StatusCode != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("token: %d %v", resp.StatusCode, body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Pragma") != "no-cache" {
		t.Fatalf("token response: Cache-Control %q, Pragma %q", resp.Header.Get("Cache-Control"), resp.Header.Get("Pragma"))
	}
	resp, body = postForm(t, e, "/oauth/token", "", "", form) // the code again
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Pragma") != "no-cache" {
		t.Fatalf("token error: %d %v, Cache-Control %q, Pragma %q", resp.StatusCode, body,
			resp.Header.Get("Cache-Control"), resp.Header.Get("Pragma"))
	}
}

// TestClientAuthenticationFailureChallengesBasic: RFC 6749 §5.2 (and RFC
// 7662 §2.3, RFC 7009 §2.2.1 which refer to it), a client that failed to
// authenticate with the Authorization header gets 401 with a
// WWW-Authenticate challenge of the scheme it used, Basic, at the token,
// introspection and revocation endpoints; so does one that sent its secret
// in the form (HTTP requires a challenge with every 401, and Basic is the
// header scheme these endpoints take).
func TestClientAuthenticationFailureChallengesBasic(t *testing.T) {
	e, _, rp1, _ := twoApps(t, "sqlite:"+t.TempDir()+"/idp.db")
	b := newBrowser(t, e.issuer)
	code := rp1.callback(login(t, b, b.get(rp1.authURL()), agentEmail, agentPass).Location())
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {app1Redirect}, "code_verifier": {rp1.pkce}}
	wantChallenge := func(what string, resp *http.Response, body map[string]any) {
		t.Helper()
		ch := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(ch, "Basic realm=") {
			t.Fatalf("%s: %d %v, WWW-Authenticate %q", what, resp.StatusCode, body, ch)
		}
	}

	resp, body := postForm(t, e, "/oauth/token", "app1", "wrong-secret", exchange)
	if body["error"] != "invalid_client" {
		t.Fatalf("token with a wrong secret: %d %v", resp.StatusCode, body)
	}
	wantChallenge("token, wrong secret in the header", resp, body)
	resp, body = postForm(t, e, "/oauth/introspect", "app1", "wrong-secret", url.Values{"token": {"x"}})
	wantChallenge("introspection, wrong secret in the header", resp, body)
	resp, body = postForm(t, e, "/revoke", "app1", "wrong-secret", url.Values{"token": {"x"}})
	wantChallenge("revocation, wrong secret in the header", resp, body)

	inForm := url.Values{"client_id": {"app1"}, "client_secret": {"wrong-secret"}}
	for k, v := range exchange {
		inForm[k] = v
	}
	resp, body = postForm(t, e, "/oauth/token", "", "", inForm)
	wantChallenge("token, wrong secret in the form", resp, body)

	// The code was not spent by the failures: the right secret still gets
	// its tokens, without a challenge.
	resp, body = postForm(t, e, "/oauth/token", "app1", rp1.oauth.ClientSecret, exchange)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("WWW-Authenticate") != "" {
		t.Fatalf("token with the right secret: %d %v, WWW-Authenticate %q", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
	}
}
