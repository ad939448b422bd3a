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

		li := rp1.mustExchange(rp1.callback(login(t, b, b.get(rp1.authURL()), agentEmail, agentPass).Location()))
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
