package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestLogoutWithoutReturnAddress: an application that logs the agent out
// without a post-logout address leaves the agent on the login page, told
// « Vous êtes déconnecté. »
func TestLogoutWithoutReturnAddress(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		li := rp1.signIn(t, b)
		raw, _ := li.token.Extra("id_token").(string)
		p := b.get("/end_session?" + url.Values{"id_token_hint": {raw}}.Encode())
		// The test browser follows the provider's own redirects.
		if p.Status != http.StatusOK || p.URL.Path != "/login" || p.URL.RawQuery != "info=logged_out" {
			t.Fatalf("logout without a return address: status %d at %s", p.Status, p.URL)
		}
		p.mustContain("Vous êtes déconnecté.")
	})
}

// TestLogoutWithAnIDTokenOfARetiredKey: the ID token an application holds
// still names the agent at logout after a key rotation, once the token
// itself has expired: the key that signed it stays published for the
// refresh tokens' lifetime, not only the ID tokens'.
func TestLogoutWithAnIDTokenOfARetiredKey(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		li := rp1.signIn(t, b)
		raw, _ := li.token.Extra("id_token").(string)
		if _, err := e.srv.provider.RotateKeys(e.ctx, true); err != nil {
			t.Fatal(err)
		}
		e.clock.advance(e.cfg.Keys.PublishAhead + e.cfg.Tokens.IDTokenTTL + e.cfg.Tokens.AccessTTL + time.Hour)
		if err := e.srv.provider.RunKeyRotatorOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
		p := b.get("/end_session?" + url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {app1Redirect + "/logged-out"}}.Encode())
		if p.Location() != app1Redirect+"/logged-out" {
			t.Fatalf("logout with the application's ID token after a rotation: status %d, location %q", p.Status, p.Location())
		}
	})
}

// TestLogoutWithoutHintAsksFirst: an end-session request without an
// id_token_hint (a link or an image on any site) does not end the agent's
// session: a confirmation page asks, and its form, CSRF-checked, does.
func TestLogoutWithoutHintAsksFirst(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		rp1.signIn(t, b)

		q := url.Values{"client_id": {"app1"}, "post_logout_redirect_uri": {app1Redirect + "/logged-out"}, "state": {"bye"}}
		p := b.get("/end_session?" + q.Encode())
		if p.Status != http.StatusOK || p.Location() != "" {
			t.Fatalf("end_session without a hint: status %d, location %q", p.Status, p.Location())
		}
		p.mustContain("Déconnexion", "Confirmez-vous la déconnexion ?", "Se déconnecter", "Annuler")
		// Still signed in: single sign-on answers at once.
		if sso := b.get(rp1.authURL()); !strings.Contains(sso.Location(), "code=") {
			t.Fatalf("the session ended without a confirmation: %d %q", sso.Status, sso.Location())
		}
		// A forged confirmation (no CSRF token) is asked again.
		forged := url.Values{"confirm": {"1"}, "client_id": {"app1"}}
		resp, err := b.client.PostForm(e.issuer+"/end_session", forged)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("forged confirmation: status %d", resp.StatusCode)
		}
		if sso := b.get(rp1.authURL()); !strings.Contains(sso.Location(), "code=") {
			t.Fatal("a forged confirmation ended the session")
		}
		// The page's own form logs out, and goes where the application asked.
		out := b.submit(b.get("/end_session?" + q.Encode()).form("Se déconnecter"))
		if !strings.HasPrefix(out.Location(), app1Redirect+"/logged-out") || !strings.Contains(out.Location(), "state=bye") {
			t.Fatalf("confirmed logout: status %d, location %q", out.Status, out.Location())
		}
		b.get(rp1.authURL()).mustContain("Mot de passe oublié ?") // the login form again
	})
}

// signedIn: single sign-on still answers a code at once.
func signedIn(t *testing.T, b *browser, rp *relyingParty) bool {
	t.Helper()
	return strings.Contains(b.get(rp.authURL()).Location(), "code=")
}

// TestLogoutWithTheHintOfAnotherAgentAsksFirst (RP-Initiated Logout 1.0,
// §2): an ID token of another agent, here the attacker's own, valid or
// expired, in a link does not end the agent's session: the confirmation
// page asks, as for a link without a hint, and its form logs out.
func TestLogoutWithTheHintOfAnotherAgentAsksFirst(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		const attackerEmail = "agent.martin@partenaire.fr"
		e.addAgent(attackerEmail, "Paul Martin", "", agentPass)
		attacker := newBrowser(t, e.issuer)
		li := rp1.mustExchange(rp1.callback(login(t, attacker, attacker.get(rp1.authURL()), attackerEmail, agentPass).Location()))
		hint, _ := li.token.Extra("id_token").(string)

		victim := newBrowser(t, e.issuer)
		rp1.mustExchange(rp1.callback(login(t, victim, victim.get(rp1.authURL()), agentEmail, agentPass).Location()))
		for _, when := range []string{"valid", "expired"} {
			if when == "expired" {
				e.clock.advance(e.cfg.Tokens.IDTokenTTL + time.Minute)
			}
			p := victim.get("/end_session?" + url.Values{"id_token_hint": {hint}}.Encode())
			if p.Status != http.StatusOK || p.Location() != "" {
				t.Fatalf("%s hint of another agent: status %d at %s, location %q", when, p.Status, p.URL, p.Location())
			}
			p.mustContain("Déconnexion", "Confirmez-vous la déconnexion ?")
			if !signedIn(t, victim, rp1) {
				t.Fatalf("a link with another agent's %s id_token_hint ended the session without asking", when)
			}
		}
		// The agent who confirms is logged out.
		out := victim.submit(victim.get("/end_session?" + url.Values{"id_token_hint": {hint}}.Encode()).form("Se déconnecter"))
		if out.Status != http.StatusOK || out.URL.Path != "/login" || out.URL.RawQuery != "info=logged_out" {
			t.Fatalf("confirmed logout: status %d at %s", out.Status, out.URL)
		}
		if signedIn(t, victim, rp1) {
			t.Fatal("the confirmed logout left the session")
		}
	})
}

// TestRefusedLogoutKeepsTheSession: an end-session request the agent did
// not ask for ends nothing, even one the provider would refuse: an
// id_token_hint that is no ID token of ours gets the error page, and a
// forged confirmation (no CSRF token) with a post_logout_redirect_uri the
// application did not register gets the confirmation page; the browser
// stays signed in.
func TestRefusedLogoutKeepsTheSession(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		rp1.signIn(t, b)

		p := b.get("/end_session?" + url.Values{"id_token_hint": {"not-a-token"}}.Encode())
		if p.Status != http.StatusBadRequest || p.Location() != "" {
			t.Fatalf("invalid id_token_hint: status %d, location %q", p.Status, p.Location())
		}
		p.mustContain("Code technique : invalid_request")
		if !signedIn(t, b, rp1) {
			t.Fatal("an end-session request with an invalid id_token_hint logged the browser out")
		}

		forged := url.Values{"confirm": {"1"}, "client_id": {"app1"}, "post_logout_redirect_uri": {"https://evil.example/"}}
		resp, err := b.client.PostForm(e.issuer+"/end_session", forged)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("forged confirmation with an unregistered post-logout URI: status %d", resp.StatusCode)
		}
		if !signedIn(t, b, rp1) {
			t.Fatal("a forged confirmation with an unregistered post-logout URI logged the browser out")
		}
	})
}

// TestLogoutTheAgentAskedForEndsTheSession: an agent who confirmed « Se
// déconnecter » on the provider's page, or whose application sent an ID
// token naming it, asked to be logged out; a request the library then
// refuses (a post_logout_redirect_uri the application did not register, an
// unknown client_id, one the hint was not issued to) costs the application
// its redirect, and still ends the session and its cookie: on a shared
// computer the next person would get the agent's single sign-on.
func TestLogoutTheAgentAskedForEndsTheSession(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		for _, tc := range []struct {
			what    string
			query   url.Values
			confirm bool // through the confirmation page; else with the agent's ID token as hint
		}{
			{"confirmed, unregistered post-logout URI", url.Values{"client_id": {"app1"}, "post_logout_redirect_uri": {app1Redirect + "/not-registered"}}, true},
			{"confirmed, unknown client_id", url.Values{"client_id": {"unknown"}, "post_logout_redirect_uri": {app1Redirect + "/logged-out"}}, true},
			{"hint, unregistered post-logout URI", url.Values{"post_logout_redirect_uri": {"https://evil.example/"}}, false},
			{"hint, another client_id", url.Values{"client_id": {"app2"}, "post_logout_redirect_uri": {app2Redirect}}, false},
		} {
			b := newBrowser(t, e.issuer)
			li := rp1.signIn(t, b)
			var out *page
			if tc.confirm {
				p := b.get("/end_session?" + tc.query.Encode())
				p.mustContain("Confirmez-vous la déconnexion ?")
				out = b.submit(p.form("Se déconnecter"))
			} else {
				raw, _ := li.token.Extra("id_token").(string)
				tc.query.Set("id_token_hint", raw)
				out = b.get("/end_session?" + tc.query.Encode())
			}
			if out.Status < 400 || out.Location() != "" {
				t.Fatalf("%s: status %d at %s, location %q; want the library's refusal", tc.what, out.Status, out.URL, out.Location())
			}
			for _, c := range b.client.Jar.Cookies(out.URL) {
				if c.Name == "idp_session" {
					t.Errorf("%s: the session cookie is still set", tc.what)
				}
			}
			if signedIn(t, b, rp1) {
				t.Fatalf("%s: the agent asked to be logged out and is still signed in", tc.what)
			}
		}
	})
}
