package main

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
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
