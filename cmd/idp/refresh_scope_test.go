package main

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
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
// endpoints a client authenticates at, which tells nothing of which it was
// (the library wrote "unknown client" at the token endpoint, and the
// error's text as it is at introspection): RFC 6749 §5.2's JSON
// invalid_client, 401.
func TestClientAuthenticationFailuresLookAlike(t *testing.T) {
	e, _, _, _ := twoApps(t, "sqlite:"+t.TempDir()+"/idp.db")
	forms := map[string]url.Values{
		"/oauth/introspect": {"token": {"x"}},
		"/oauth/token":      {"grant_type": {"refresh_token"}, "refresh_token": {"x"}},
		"/revoke":           {"token": {"x"}},
	}
	for path, form := range forms {
		var first string
		clients := []struct{ id, secret string }{{"nosuch", "s"}, {"app1", "wrong"}}
		if path == "/oauth/introspect" {
			// Only confidential clients introspect: a public one's answer
			// too is the failure's. Elsewhere it is no client failure: a
			// public client authenticates by its id alone.
			clients = append(clients, struct{ id, secret string }{"app2", "s"})
		}
		for _, c := range clients {
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
			mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
			if resp.StatusCode != http.StatusUnauthorized || mt != "application/json" || errorOf(raw) != "invalid_client" {
				t.Fatalf("%s as %s: %s (%s); want 401 application/json invalid_client", path, c.id, got, mt)
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

// errorOf is the OAuth error of a JSON answer ("" when there is none).
func errorOf(raw []byte) string {
	var body struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(raw, &body)
	return body.Error
}
