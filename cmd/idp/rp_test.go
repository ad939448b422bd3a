package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// relyingParty is a relying application using standard, certified client
// libraries unchanged: coreos/go-oidc for discovery and ID token
// verification, golang.org/x/oauth2 for the code flow with PKCE.
type relyingParty struct {
	t        *testing.T
	ctx      context.Context
	provider *oidc.Provider
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	// per-login state
	state, nonce, pkce string
}

func newRP(t *testing.T, e *testEnv, clientID, secret, redirect string, scopes ...string) *relyingParty {
	t.Helper()
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	return &relyingParty{
		t: t, ctx: ctx, provider: p,
		oauth: oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: p.Endpoint(),
			RedirectURL: redirect, Scopes: scopes},
		verifier: p.Verifier(&oidc.Config{ClientID: clientID}),
	}
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// authURL starts a login with fresh state, nonce and PKCE verifier.
func (rp *relyingParty) authURL(extra ...oauth2.AuthCodeOption) string {
	rp.state, rp.nonce, rp.pkce = randomHex(), randomHex(), oauth2.GenerateVerifier()
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce(rp.nonce), oauth2.S256ChallengeOption(rp.pkce)}, extra...)
	return rp.oauth.AuthCodeURL(rp.state, opts...)
}

// callback checks the redirect the browser was sent to and returns the code.
func (rp *relyingParty) callback(location string) string {
	rp.t.Helper()
	u, err := url.Parse(location)
	if err != nil {
		rp.t.Fatal(err)
	}
	q := u.Query()
	if e := q.Get("error"); e != "" {
		rp.t.Fatalf("relying application got error %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != rp.state {
		rp.t.Fatalf("state %q, want %q (location %s)", q.Get("state"), rp.state, location)
	}
	if q.Get("code") == "" {
		rp.t.Fatalf("no code in %s", location)
	}
	return q.Get("code")
}

// loggedIn is what the relying application holds after a login.
type loggedIn struct {
	token   *oauth2.Token
	idToken *oidc.IDToken
	claims  map[string]any
}

// exchange trades the code (with the PKCE verifier) and verifies the ID
// token: signature, issuer, audience, expiry, nonce.
func (rp *relyingParty) exchange(code string) (*loggedIn, error) {
	tok, err := rp.oauth.Exchange(rp.ctx, code, oauth2.VerifierOption(rp.pkce))
	if err != nil {
		return nil, err
	}
	return rp.verify(tok, true)
}

// verify checks the ID token of a token response; a refreshed one carries no
// nonce (OIDC Core 12.2), so the nonce is checked only after a login.
func (rp *relyingParty) verify(tok *oauth2.Token, afterLogin bool) (*loggedIn, error) {
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(rp.ctx, raw)
	if err != nil {
		return nil, err
	}
	if afterLogin && idt.Nonce != rp.nonce {
		rp.t.Fatalf("nonce %q, want %q", idt.Nonce, rp.nonce)
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	return &loggedIn{token: tok, idToken: idt, claims: claims}, nil
}

// signIn has the agent log in with b at rp (the login form, the code, its
// exchange): what most tests start from.
func (rp *relyingParty) signIn(t *testing.T, b *browser) *loggedIn {
	t.Helper()
	return rp.mustExchange(rp.callback(login(t, b, b.get(rp.authURL()), agentEmail, agentPass).Location()))
}

func (rp *relyingParty) mustExchange(code string) *loggedIn {
	rp.t.Helper()
	li, err := rp.exchange(code)
	if err != nil {
		rp.t.Fatalf("code exchange: %v", err)
	}
	return li
}
