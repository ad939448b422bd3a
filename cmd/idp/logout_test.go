package main

import (
	"net/http"
	"net/url"
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
		li := rp1.mustExchange(rp1.callback(login(t, b, b.get(rp1.authURL()), agentEmail, agentPass).Location()))
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
		li := rp1.mustExchange(rp1.callback(login(t, b, b.get(rp1.authURL()), agentEmail, agentPass).Location()))
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
