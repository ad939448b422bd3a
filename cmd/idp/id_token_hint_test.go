package main

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

const otherEmail = "agent.martin@partenaire.fr"

// hintedApps is twoApps with a second agent, and the ID token app1 got for
// the first agent from a browser of its own.
func hintedApps(t *testing.T, dbURL string) (e *testEnv, rp1 *relyingParty, hintA string, subA string) {
	t.Helper()
	e, _, rp1, _ = twoApps(t, dbURL)
	e.addAgent(otherEmail, "Paul Martin", "", agentPass)
	a := newBrowser(t, e.issuer)
	li := rp1.mustExchange(rp1.callback(login(t, a, a.get(rp1.authURL()), agentEmail, agentPass).Location()))
	hintA, _ = li.token.Extra("id_token").(string)
	return e, rp1, hintA, li.idToken.Subject
}

// TestIDTokenHintOfAnotherAgentIsNotSilentlyReplaced (OIDC Core 3.1.2.1):
// prompt=none with agent A's ID token as id_token_hint, from a browser
// signed in as agent B, is login_required: no code, and no ID token, for B.
func TestIDTokenHintOfAnotherAgentIsNotSilentlyReplaced(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, rp1, hintA, subA := hintedApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		liB := rp1.mustExchange(rp1.callback(login(t, b, b.get(rp1.authURL()), otherEmail, agentPass).Location()))
		p := b.get(rp1.authURL(oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("id_token_hint", hintA)))
		if strings.Contains(p.Location(), "code=") {
			got := rp1.mustExchange(rp1.callback(p.Location()))
			t.Fatalf("prompt=none with the ID token of %s answered a code for %s (B is %s)", subA, got.idToken.Subject, liB.idToken.Subject)
		}
		if !strings.HasPrefix(p.Location(), app1Redirect) || !strings.Contains(p.Location(), "error=login_required") ||
			!strings.Contains(p.Location(), "state="+rp1.state) {
			t.Fatalf("status %d location %q, want login_required", p.Status, p.Location())
		}
	})
}

// TestIDTokenHintOfAnotherAgentShowsTheLoginForm: without prompt=none, the
// same request does not sign B in silently either: the login page asks.
func TestIDTokenHintOfAnotherAgentShowsTheLoginForm(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, rp1, hintA, subA := hintedApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		rp1.mustExchange(rp1.callback(login(t, b, b.get(rp1.authURL()), otherEmail, agentPass).Location()))
		p := b.get(rp1.authURL(oauth2.SetAuthURLParam("id_token_hint", hintA)))
		if p.Location() != "" || p.Status != http.StatusOK || p.URL.Path != "/login" {
			t.Fatalf("another agent's id_token_hint: status %d at %s, location %q; want the login page", p.Status, p.URL.Path, p.Location())
		}
		// The agent the application asked about logs in.
		li := rp1.mustExchange(rp1.callback(login(t, b, p, agentEmail, agentPass).Location()))
		if li.idToken.Subject != subA {
			t.Fatalf("subject %s after the login of %s", li.idToken.Subject, subA)
		}
	})
}

// TestIDTokenHintOfTheSignedInAgentSignsInSilently: the hint of the agent
// who is signed in changes nothing: prompt=none answers a code for them.
func TestIDTokenHintOfTheSignedInAgentSignsInSilently(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		li := rp1.signIn(t, b)
		hint, _ := li.token.Extra("id_token").(string)
		p := b.get(rp1.authURL(oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("id_token_hint", hint)))
		again := rp1.mustExchange(rp1.callback(p.Location()))
		if again.idToken.Subject != li.idToken.Subject {
			t.Fatalf("subject %s, want %s", again.idToken.Subject, li.idToken.Subject)
		}
	})
}
