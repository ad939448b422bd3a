package main

import (
	"fmt"
	"io"
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

// TestClientAuthenticationFailuresLookAlike: an unknown client, a wrong
// secret and a public client sending one get the same answer from the
// introspection endpoint (whose library handler writes the error's text as
// it is), which tells nothing of which it was.
func TestClientAuthenticationFailuresLookAlike(t *testing.T) {
	e, _, _, _ := twoApps(t, "sqlite:"+t.TempDir()+"/idp.db")
	for _, path := range []string{"/oauth/introspect"} {
		form := url.Values{"token": {"x"}}
		var first string
		for _, c := range []struct{ id, secret string }{{"nosuch", "s"}, {"app1", "wrong"}, {"app2", "s"}} {
			req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(c.id, c.secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := fmt.Sprintf("%d %s", resp.StatusCode, raw)
			if resp.StatusCode < 400 {
				t.Fatalf("%s as %s: %s", path, c.id, got)
			}
			for _, leak := range []string{"unknown", "public", "wrong", "nosuch"} {
				if strings.Contains(strings.ToLower(string(raw)), leak) {
					t.Errorf("%s as %s tells %q: %s", path, c.id, leak, got)
				}
			}
			if first == "" {
				first = got
			} else if got != first {
				t.Errorf("%s: %q for %s, %q for the unknown client", path, got, c.id, first)
			}
		}
	}
}
