package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caf-extranet/idp/config"
)

// jwksKids lists the key ids the provider publishes.
func jwksKids(t *testing.T, e *testEnv) []string {
	t.Helper()
	resp := e.get("/keys")
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid+"/"+k.Alg)
	}
	return kids
}

// TestKeyRotation: a new key is published before it signs; the previous
// one stays published until every token it signed has expired.
func TestKeyRotation(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, func(c *config.Config) { c.Keys.PublishAhead = 10 * time.Minute })
		e.addAgent(agentEmail, "Claire Dupont", "", agentPass)
		secret := e.addClient("app1", app1Redirect, false)
		rp := newRP(t, e, "app1", secret, app1Redirect)
		b := newBrowser(t, e.issuer)
		first := jwksKids(t, e)
		if len(first) != 1 || !strings.HasSuffix(first[0], "/RS256") {
			t.Fatalf("initial key set %v, want one RS256 key", first)
		}
		li := rp.mustExchange(rp.callback(login(t, b, b.get(rp.authURL()), agentEmail, agentPass).Location()))

		if rotated, err := e.srv.provider.RotateKeys(e.ctx, true); err != nil || !rotated {
			t.Fatalf("rotate: %v %v", rotated, err)
		}
		if kids := jwksKids(t, e); len(kids) != 2 {
			t.Fatalf("after rotation the key set is %v, want the old and the next key", kids)
		}
		// Not yet signing with the new key: tokens still verify against the
		// old one, which a client that cached the old set also knows.
		li = rp.mustExchange(rp.callback(b.get(rp.authURL()).Location()))
		if kid := headerKid(t, li); kid+"/RS256" != first[0] {
			t.Fatalf("signed with %s before publish_ahead passed, want %s", kid, first[0])
		}
		e.clock.advance(11 * time.Minute)
		e.srv.provider.RunKeyRotatorOnce(e.ctx)
		li = rp.mustExchange(rp.callback(b.get(rp.authURL()).Location()))
		if kid := headerKid(t, li); kid+"/RS256" == first[0] {
			t.Fatal("still signing with the old key after publish_ahead")
		}
		if kids := jwksKids(t, e); len(kids) != 2 {
			t.Fatalf("the old key left the set while its tokens may live: %v", kids)
		}
		// Its ID tokens expired, the old key stays: they may come back as
		// id_token_hint (logout, prompt=none) for as long as a refresh
		// token lives.
		e.clock.advance(e.cfg.Tokens.IDTokenTTL + e.cfg.Tokens.AccessTTL + time.Minute)
		e.srv.provider.RunKeyRotatorOnce(e.ctx)
		if kids := jwksKids(t, e); len(kids) != 2 {
			t.Fatalf("the old key left the set while its ID tokens may come back as hints: %v", kids)
		}
		// Then it goes.
		e.clock.advance(e.cfg.Tokens.RefreshTTL)
		e.srv.provider.RunKeyRotatorOnce(e.ctx)
		if kids := jwksKids(t, e); len(kids) != 1 || kids[0] == first[0] {
			t.Fatalf("a refresh token's lifetime after the rotation the set is %v", kids)
		}
	})
}

func headerKid(t *testing.T, li *loggedIn) string {
	t.Helper()
	raw, _ := li.token.Extra("id_token").(string)
	head, _, _ := strings.Cut(raw, ".")
	var h struct {
		Kid string `json:"kid"`
	}
	dec, err := decodeSegment(head)
	if err != nil || json.Unmarshal(dec, &h) != nil {
		t.Fatalf("ID token header: %v", err)
	}
	return h.Kid
}

func TestES256Keys(t *testing.T) {
	e := newEnv(t, "sqlite:"+t.TempDir()+"/idp.db", func(c *config.Config) { c.Keys.Algorithm = "ES256" })
	e.addAgent(agentEmail, "Claire Dupont", "", agentPass)
	secret := e.addClient("app1", app1Redirect, false)
	rp := newRP(t, e, "app1", secret, app1Redirect)
	b := newBrowser(t, e.issuer)
	if kids := jwksKids(t, e); len(kids) != 1 || !strings.HasSuffix(kids[0], "/ES256") {
		t.Fatalf("key set %v, want one ES256 key", kids)
	}
	rp.mustExchange(rp.callback(login(t, b, b.get(rp.authURL()), agentEmail, agentPass).Location()))
}

// discoveredAlgorithms is what the discovery document lists in
// id_token_signing_alg_values_supported.
func discoveredAlgorithms(t *testing.T, e *testEnv) []string {
	t.Helper()
	resp := e.get("/.well-known/openid-configuration")
	defer resp.Body.Close()
	var d struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d.Algs
}

// TestAlgorithmChangeKeepsIDTokensVerifiable: keys.algorithm applies to new
// keys only, so after it changes the existing key goes on signing until the
// next rotation. Discovery lists the algorithms of every published key and
// the configured one: a client that takes the allowed algorithms from
// discovery (go-oidc) verifies the ID tokens of the old key, then of the
// new one, and the old algorithm leaves the list with the old key.
func TestAlgorithmChangeKeepsIDTokensVerifiable(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		newEnv(t, dbURL, nil) // an existing deployment: its RS256 key
		e := newEnv(t, dbURL, func(c *config.Config) { c.Keys.Algorithm = "ES256" })
		e.addAgent(agentEmail, "Claire Dupont", "", agentPass)
		secret := e.addClient("app1", app1Redirect, false)
		if algs := discoveredAlgorithms(t, e); !slices.Equal(algs, []string{"RS256", "ES256"}) {
			t.Fatalf("after keys.algorithm changed discovery lists %v, want [RS256 ES256]", algs)
		}
		rp := newRP(t, e, "app1", secret, app1Redirect)
		b := newBrowser(t, e.issuer)
		code := rp.callback(login(t, b, b.get(rp.authURL()), agentEmail, agentPass).Location())
		if _, err := rp.exchange(code); err != nil {
			t.Fatalf("a certified client rejects the ID token after keys.algorithm changed: %v (published keys %v)", err, jwksKids(t, e))
		}

		// The rotation brings an ES256 key, which signs after publish_ahead.
		if rotated, err := e.srv.provider.RotateKeys(e.ctx, true); err != nil || !rotated {
			t.Fatalf("rotate: %v %v", rotated, err)
		}
		e.clock.advance(e.cfg.Keys.PublishAhead + time.Minute)
		if err := e.srv.provider.RunKeyRotatorOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
		li := rp.mustExchange(rp.callback(b.get(rp.authURL()).Location()))
		if kid := headerKid(t, li); !slices.Contains(jwksKids(t, e), kid+"/ES256") {
			t.Fatalf("signed with %s after the rotation, want the ES256 key of %v", kid, jwksKids(t, e))
		}
		// Once the RS256 key is retired, discovery no longer lists RS256.
		e.clock.advance(e.cfg.Tokens.RefreshTTL + time.Minute)
		if err := e.srv.provider.RunKeyRotatorOnce(e.ctx); err != nil {
			t.Fatal(err)
		}
		if algs := discoveredAlgorithms(t, e); !slices.Equal(algs, []string{"ES256"}) {
			t.Fatalf("with only ES256 keys published discovery lists %v (keys %v)", algs, jwksKids(t, e))
		}
	})
}

// TestCORS: cross-origin calls only to token, userinfo, JWKS, revocation (a
// browser application revokes its tokens at sign-out) and discovery, and
// only from a registered client's origin.
func TestCORS(t *testing.T) {
	e := newEnv(t, "sqlite:"+t.TempDir()+"/idp.db", nil)
	e.addClient("app1", "https://app.example.fr/callback", true)
	preflight := func(path, origin string) string {
		req, _ := http.NewRequest(http.MethodOptions, e.issuer+path, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Access-Control-Allow-Origin")
	}
	for _, path := range []string{"/oauth/token", "/userinfo", "/keys", "/revoke", "/.well-known/openid-configuration"} {
		if got := preflight(path, "https://app.example.fr"); got != "https://app.example.fr" {
			t.Errorf("%s from the registered origin: Allow-Origin %q", path, got)
		}
		if got := preflight(path, "https://evil.example"); got != "" {
			t.Errorf("%s from an unknown origin: Allow-Origin %q", path, got)
		}
	}
	for _, path := range []string{"/authorize", "/oauth/introspect", "/end_session"} {
		if got := preflight(path, "https://app.example.fr"); got != "" {
			t.Errorf("%s allows cross-origin calls: %q", path, got)
		}
	}
}

func decodeSegment(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }
