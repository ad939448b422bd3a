package cluster

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// relyingParty is a relying application built on standard client libraries
// (coreos/go-oidc, golang.org/x/oauth2 with PKCE). It knows one issuer; its
// HTTP client reaches the instance chosen with on().
type relyingParty struct {
	t        *testing.T
	ctx      context.Context
	via      *switchTransport
	provider *oidc.Provider
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	// per-login state
	state, nonce, pkce string
}

func (c *cluster) newRP(t *testing.T, secret string) *relyingParty {
	t.Helper()
	via := &switchTransport{c: c}
	ctx := oidc.ClientContext(context.Background(), &http.Client{Transport: via, Timeout: 30 * time.Second})
	p, err := oidc.NewProvider(ctx, c.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &relyingParty{
		t: t, ctx: ctx, via: via, provider: p,
		oauth: oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: redirectURI,
			Scopes: []string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess}},
		verifier: p.Verifier(&oidc.Config{ClientID: clientID}),
	}
}

// on sends the relying party's next requests to node i.
func (rp *relyingParty) on(i int) *relyingParty {
	rp.via.use(i)
	return rp
}

// authURL starts a login with a fresh state, nonce and PKCE verifier.
func (rp *relyingParty) authURL() string {
	rp.state, rp.nonce, rp.pkce = oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	return rp.oauth.AuthCodeURL(rp.state, oidc.Nonce(rp.nonce), oauth2.S256ChallengeOption(rp.pkce))
}

// code reads the code from the redirect to the application, checking state.
func (rp *relyingParty) code(location *url.URL) string {
	rp.t.Helper()
	if got := location.Scheme + "://" + location.Host + location.Path; got != redirectURI {
		rp.t.Fatalf("redirected to %s, want the application's %s", location, redirectURI)
	}
	q := location.Query()
	if e := q.Get("error"); e != "" {
		rp.t.Fatalf("application got error %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != rp.state || q.Get("code") == "" {
		rp.t.Fatalf("redirect %s: want state %s and a code", location, rp.state)
	}
	return q.Get("code")
}

// exchange trades the code and verifies the ID token (signature against the
// published keys, issuer, audience, expiry, nonce).
func (rp *relyingParty) exchange(code string) (*oauth2.Token, *oidc.IDToken, error) {
	tok, err := rp.oauth.Exchange(rp.ctx, code, oauth2.VerifierOption(rp.pkce))
	if err != nil {
		return nil, nil, err
	}
	idt, err := rp.verify(tok)
	if err != nil {
		return nil, nil, err
	}
	if idt.Nonce != rp.nonce {
		rp.t.Fatalf("nonce %q, want %q", idt.Nonce, rp.nonce)
	}
	return tok, idt, nil
}

// verify checks the ID token of a token response.
func (rp *relyingParty) verify(tok *oauth2.Token) (*oidc.IDToken, error) {
	raw, _ := tok.Extra("id_token").(string)
	return rp.verifier.Verify(rp.ctx, raw)
}

// refresh trades a refresh token for new tokens.
func (rp *relyingParty) refresh(refreshToken string) (*oauth2.Token, error) {
	old := &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Now().Add(-time.Hour)}
	return rp.oauth.TokenSource(rp.ctx, old).Token()
}
