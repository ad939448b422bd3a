package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

// TestRefreshNarrowedScopeKeepsTheGrant: a refresh that asks for fewer scopes
// gets an access token for those only, and a refresh token that still
// carries the whole grant (RFC 6749 §6), so that the next refresh may ask for
// every scope again.
func TestRefreshNarrowedScopeKeepsTheGrant(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, secret1, _, _ := twoApps(t, dbURL)
		rp := newRP(t, e, "app1", secret1, app1Redirect, oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess)
		b := newBrowser(t, e.issuer)
		li := rp.mustExchange(rp.callback(login(t, b, b.get(rp.authURL()), agentEmail, agentPass).Location()))
		refresh := func(token, scope string) map[string]any {
			t.Helper()
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}
			if scope != "" {
				form.Set("scope", scope)
			}
			resp, body := postForm(t, e, "/oauth/token", "app1", secret1, form)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("refresh with scope %q: %d %v", scope, resp.StatusCode, body)
			}
			return body
		}
		narrow := refresh(li.token.RefreshToken, "openid")
		if got := narrow["scope"]; got != "openid" {
			t.Fatalf("narrowed refresh: access token scope %v, want openid", got)
		}
		full := refresh(narrow["refresh_token"].(string), "openid email profile offline_access")
		for _, want := range []string{"email", "profile", "offline_access"} {
			if !strings.Contains(full["scope"].(string), want) {
				t.Fatalf("refresh after a narrowed one: scope %v lacks %s", full["scope"], want)
			}
		}
		plain := refresh(full["refresh_token"].(string), "")
		if !strings.Contains(plain["scope"].(string), "email") {
			t.Fatalf("plain refresh: scope %v, want the whole grant", plain["scope"])
		}
	})
}
