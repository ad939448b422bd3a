package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	app1Redirect = "http://localhost:9001/app1/callback"
	app2Redirect = "http://localhost:9002/app2/callback"
	agentEmail   = "agent.dupont@partenaire.fr"
	agentPass    = "secret12"
)

// login fills the login form the browser is on and returns where the
// browser was sent when it left the provider.
func login(t *testing.T, b *browser, p *page, email, password string) *page {
	t.Helper()
	p.mustContain("Adresse e-mail", "Mot de passe", "Mot de passe oublié ?", "réservé aux seules personnes habilitées")
	return b.submit(p.form("Valider").set("Adresse e-mail", email).set("Mot de passe", password))
}

func TestOIDCEndToEnd(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil)
		agent := e.addAgent(agentEmail, "Claire Dupont", "Mairie de Lyon", agentPass)
		secret1 := e.addClient("app1", app1Redirect, false)
		e.addClient("app2", app2Redirect, true)
		rp1 := newRP(t, e, "app1", secret1, app1Redirect, oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess)
		rp2 := newRP(t, e, "app2", "", app2Redirect)
		b := newBrowser(t, e.issuer)

		// Log in through app1, with PKCE and a confidential client.
		out := login(t, b, b.get(rp1.authURL()), agentEmail, agentPass)
		if out.URL.Path != "/login" {
			t.Fatalf("the code came from %s, want the answer to POST /login itself", out.URL.Path)
		}
		li := rp1.mustExchange(rp1.callback(out.Location()))
		c := li.claims
		if c["sub"] != agent.ID || c["email"] != agentEmail || c["email_verified"] != true ||
			c["name"] != "Claire Dupont" || c["organisation"] != "Mairie de Lyon" {
			t.Fatalf("ID token claims: %v", c)
		}
		for _, k := range []string{"auth_time", "amr", "at_hash", "iat", "exp"} {
			if _, ok := c[k]; !ok {
				t.Fatalf("ID token lacks %s: %v", k, c)
			}
		}
		if err := li.idToken.VerifyAccessToken(li.token.AccessToken); err != nil {
			t.Fatalf("at_hash: %v", err)
		}
		ui, err := rp1.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(li.token))
		if err != nil {
			t.Fatalf("userinfo: %v", err)
		}
		var uiClaims map[string]any
		_ = ui.Claims(&uiClaims)
		if ui.Subject != agent.ID || ui.Email != agentEmail || uiClaims["organisation"] != "Mairie de Lyon" || uiClaims["name"] != "Claire Dupont" {
			t.Fatalf("userinfo: %v", uiClaims)
		}

		// SSO: app2 (public client) gets its code without a new login.
		p := b.get(rp2.authURL())
		if p.Status != http.StatusFound {
			t.Fatalf("SSO into app2: status %d, page %s", p.Status, p.text())
		}
		if p.URL.Path != "/authorize" {
			t.Fatalf("SSO: the code came from %s after redirects, want /authorize's own answer", p.URL.Path)
		}
		li2 := rp2.mustExchange(rp2.callback(p.Location()))
		if li2.idToken.Subject != agent.ID {
			t.Fatalf("app2 subject %s", li2.idToken.Subject)
		}

		// Introspection and revocation of an access token.
		if !introspect(t, e, "app1", secret1, li.token.AccessToken) {
			t.Fatal("introspection: access token inactive")
		}
		revoke(t, e, "app1", secret1, li.token.AccessToken)
		if introspect(t, e, "app1", secret1, li.token.AccessToken) {
			t.Fatal("introspection: revoked token still active")
		}
		if _, err := rp1.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(li.token)); err == nil {
			t.Fatal("userinfo accepted a revoked access token")
		}

		// Refresh: rotated on every use; reusing a rotated token revokes the family.
		if li.token.RefreshToken == "" {
			t.Fatal("no refresh token with offline_access")
		}
		first := li.token.RefreshToken
		refreshed := refresh(t, rp1, first)
		if refreshed.RefreshToken == "" || refreshed.RefreshToken == first {
			t.Fatal("refresh token not rotated")
		}
		if _, err := rp1.verify(refreshed, false); err != nil {
			t.Fatalf("ID token after refresh: %v", err)
		}
		if _, err := refreshErr(rp1, first); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
			t.Fatalf("reusing a rotated refresh token: %v", err)
		}
		if _, err := refreshErr(rp1, refreshed.RefreshToken); err == nil {
			t.Fatal("the family was not revoked after a reuse")
		}

		// prompt=login forces a new login even with a session.
		p = b.get(rp1.authURL(oauth2.SetAuthURLParam("prompt", "login")))
		p.mustContain("Mot de passe oublié ?")
		// max_age: a session younger than it is reused, an older one is not.
		p = b.get(rp1.authURL(oauth2.SetAuthURLParam("max_age", "600")))
		if p.URL.Path != "/authorize" {
			t.Fatalf("max_age=600: the code came from %s", p.URL.Path)
		}
		rp1.mustExchange(rp1.callback(p.Location()))
		e.clock.advance(5 * time.Minute)
		out = login(t, b, b.get(rp1.authURL(oauth2.SetAuthURLParam("max_age", "60"))), agentEmail, agentPass)
		li = rp1.mustExchange(rp1.callback(out.Location()))

		// Logout ends the SSO session and goes only to a registered URI.
		raw, _ := li.token.Extra("id_token").(string)
		q := url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {app1Redirect + "/logged-out"}, "state": {"bye"}}
		p = b.get("/end_session?" + q.Encode())
		if p.Status != http.StatusFound || !strings.HasPrefix(p.Location(), app1Redirect+"/logged-out") || !strings.Contains(p.Location(), "state=bye") {
			t.Fatalf("logout: status %d location %q", p.Status, p.Location())
		}
		p = b.get(rp2.authURL())
		p.mustContain("Mot de passe oublié ?") // no session any more: the login form
	})
}

func refreshErr(rp *relyingParty, rt string) (*oauth2.Token, error) {
	old := &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Hour)}
	return rp.oauth.TokenSource(rp.ctx, old).Token()
}

func refresh(t *testing.T, rp *relyingParty, rt string) *oauth2.Token {
	t.Helper()
	tok, err := refreshErr(rp, rt)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return tok
}

func postForm(t *testing.T, e *testEnv, path, clientID, secret string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if clientID != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp, body
}

func introspect(t *testing.T, e *testEnv, clientID, secret, token string) bool {
	t.Helper()
	resp, body := postForm(t, e, "/oauth/introspect", clientID, secret, url.Values{"token": {token}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("introspect: %d %v", resp.StatusCode, body)
	}
	return body["active"] == true
}

func revoke(t *testing.T, e *testEnv, clientID, secret, token string) {
	t.Helper()
	resp, body := postForm(t, e, "/revoke", clientID, secret, url.Values{"token": {token}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %v", resp.StatusCode, body)
	}
}

// twoApps is a provider with the agent, the confidential client app1 (its
// secret returned) and the public client app2, and a relying party for each.
func twoApps(t *testing.T, dbURL string) (e *testEnv, secret1 string, rp1, rp2 *relyingParty) {
	t.Helper()
	e = newEnv(t, dbURL, nil)
	e.addAgent(agentEmail, "Claire Dupont", "Mairie de Lyon", agentPass)
	secret1 = e.addClient("app1", app1Redirect, false)
	e.addClient("app2", app2Redirect, true)
	return e, secret1, newRP(t, e, "app1", secret1, app1Redirect), newRP(t, e, "app2", "", app2Redirect)
}

// TestOIDCRefusals: every negative case a relying application or an
// attacker can try, each with its expected answer.
func TestOIDCRefusals(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, secret1, rp1, rp2 := twoApps(t, dbURL)

		codeFor := func(b *browser, rp *relyingParty) string {
			t.Helper()
			p := b.get(rp.authURL())
			if p.Status != http.StatusFound {
				p = login(t, b, p, agentEmail, agentPass)
			}
			return rp.callback(p.Location())
		}

		t.Run("wrong redirect_uri shows an error page, never redirects", func(t *testing.T) {
			b := newBrowser(t, e.issuer)
			bad := *rp1
			bad.oauth.RedirectURL = "https://evil.example/callback"
			p := b.get(bad.authURL())
			if p.Status < 400 || p.Location() != "" {
				t.Fatalf("status %d location %q", p.Status, p.Location())
			}
			p.mustContain("Connexion impossible", "Code technique : invalid_request")
		})
		t.Run("unknown client shows an error page", func(t *testing.T) {
			b := newBrowser(t, e.issuer)
			bad := *rp1
			bad.oauth.ClientID = "nope"
			p := b.get(bad.authURL())
			if p.Status < 400 || p.Location() != "" {
				t.Fatalf("status %d location %q", p.Status, p.Location())
			}
			p.mustContain("Connexion impossible", "Code technique : invalid_request")
		})
		t.Run("plain PKCE is refused", func(t *testing.T) {
			b := newBrowser(t, e.issuer)
			u := rp2.authURL(oauth2.SetAuthURLParam("code_challenge_method", "plain"), oauth2.SetAuthURLParam("code_challenge", strings.Repeat("a", 43)))
			p := b.get(u)
			if !strings.Contains(p.Location(), "error=invalid_request") {
				t.Fatalf("plain PKCE: status %d location %q", p.Status, p.Location())
			}
		})
		t.Run("public client without PKCE is refused", func(t *testing.T) {
			b := newBrowser(t, e.issuer)
			u := strings.NewReplacer("code_challenge=", "x=", "code_challenge_method=", "y=").Replace(rp2.authURL())
			p := b.get(u)
			if !strings.Contains(p.Location(), "error=invalid_request") {
				t.Fatalf("status %d location %q", p.Status, p.Location())
			}
		})
		t.Run("implicit flow is refused", func(t *testing.T) {
			b := newBrowser(t, e.issuer)
			u := strings.Replace(rp1.authURL(), "response_type=code", "response_type=id_token+token", 1)
			p := b.get(u)
			if !strings.Contains(p.Location(), "error=") || strings.Contains(p.Location(), "access_token") {
				t.Fatalf("status %d location %q", p.Status, p.Location())
			}
		})
		t.Run("code works once; a reuse revokes what it gave", func(t *testing.T) {
			b := newBrowser(t, e.issuer)
			code := codeFor(b, rp1)
			li := rp1.mustExchange(code)
			if _, err := rp1.exchange(code); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
				t.Fatalf("second use: %v", err)
			}
			if introspect(t, e, "app1", secret1, li.token.AccessToken) {
				t.Fatal("tokens of a reused code are still active")
			}
		})
		t.Run("wrong PKCE verifier", func(t *testing.T) {
			b := newBrowser(t, e.issuer)
			code := codeFor(b, rp1)
			rp1.pkce = oauth2.GenerateVerifier()
			if _, err := rp1.exchange(code); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
				t.Fatalf("wrong verifier: %v", err)
			}
		})
		t.Run("wrong client secret", func(t *testing.T) {
			b := newBrowser(t, e.issuer)
			code := codeFor(b, rp1)
			bad := *rp1
			bad.oauth.ClientSecret = "not-the-secret"
			if _, err := bad.exchange(code); err == nil || !strings.Contains(err.Error(), "invalid_client") {
				t.Fatalf("wrong secret: %v", err)
			}
		})
		t.Run("expired code", func(t *testing.T) {
			b := newBrowser(t, e.issuer)
			code := codeFor(b, rp1)
			e.clock.advance(61 * time.Second)
			if _, err := rp1.exchange(code); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
				t.Fatalf("expired code: %v", err)
			}
		})
		t.Run("prompt=none without a session answers login_required", func(t *testing.T) {
			b := newBrowser(t, e.issuer)
			p := b.get(rp1.authURL(oauth2.SetAuthURLParam("prompt", "none")))
			if !strings.HasPrefix(p.Location(), app1Redirect) || !strings.Contains(p.Location(), "error=login_required") ||
				!strings.Contains(p.Location(), "state="+rp1.state) {
				t.Fatalf("status %d location %q", p.Status, p.Location())
			}
		})
		t.Run("prompt=none with a session gets a code", func(t *testing.T) {
			b := newBrowser(t, e.issuer)
			rp1.mustExchange(codeFor(b, rp1))
			p := b.get(rp1.authURL(oauth2.SetAuthURLParam("prompt", "none")))
			rp1.mustExchange(rp1.callback(p.Location()))
		})
		t.Run("response_mode=form_post gets the code in a form, after a login and by SSO", func(t *testing.T) {
			b := newBrowser(t, e.issuer)
			formCode := func(p *page) string {
				t.Helper()
				fields := formPostFields(t, p, app1Redirect)
				if fields["state"] != rp1.state || fields["code"] == "" {
					t.Fatalf("form fields %v, want the code and state %q", fields, rp1.state)
				}
				return fields["code"]
			}
			formPost := oauth2.SetAuthURLParam("response_mode", "form_post")
			out := login(t, b, b.get(rp1.authURL(formPost)), agentEmail, agentPass)
			rp1.mustExchange(formCode(out))
			p := b.get(rp1.authURL(formPost))
			if p.URL.Path != "/authorize" {
				t.Fatalf("SSO form post came from %s", p.URL.Path)
			}
			rp1.mustExchange(formCode(p))
		})
		t.Run("a refused request with a session still gets the error page", func(t *testing.T) {
			// The SSO wrapper holds /authorize's answer back: a refusal
			// must come out as without a session.
			b := newBrowser(t, e.issuer)
			rp1.mustExchange(codeFor(b, rp1))
			q := url.Values{"client_id": {"app1"}, "redirect_uri": {"https://evil.example/callback"},
				"response_type": {"code"}, "scope": {"openid"}, "state": {"s"}}
			p := b.get("/authorize?" + q.Encode())
			if p.Status != http.StatusBadRequest || p.Location() != "" {
				t.Fatalf("unregistered redirect URI with a session: status %d location %q", p.Status, p.Location())
			}
			p.mustContain("invalid_request")
			// And prompt=login with a session is the form, not a code.
			p = b.get(rp1.authURL(oauth2.SetAuthURLParam("prompt", "login")))
			p.mustContain("Mot de passe oublié ?")
		})
		t.Run("tampered id_token_hint", func(t *testing.T) {
			b := newBrowser(t, e.issuer)
			li := rp1.mustExchange(codeFor(b, rp1))
			raw, _ := li.token.Extra("id_token").(string)
			parts := strings.Split(raw, ".")
			parts[1] = strings.TrimRight(parts[1], "=") + "x"
			p := b.get(rp1.authURL(oauth2.SetAuthURLParam("id_token_hint", strings.Join(parts, "."))))
			if !strings.Contains(p.Location(), "error=login_required") {
				t.Fatalf("status %d location %q", p.Status, p.Location())
			}
		})
		t.Run("post_logout_redirect_uri not registered is refused", func(t *testing.T) {
			b := newBrowser(t, e.issuer)
			q := url.Values{"client_id": {"app1"}, "post_logout_redirect_uri": {"https://evil.example/"}}
			p := b.get("/end_session?" + q.Encode())
			if p.Status < 400 || p.Location() != "" {
				t.Fatalf("status %d location %q", p.Status, p.Location())
			}
			p.mustContain("Connexion impossible")
			if strings.Contains(p.Body, "evil.example") {
				t.Fatal("the error page reflects the request")
			}
		})
	})
}
