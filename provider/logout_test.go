package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// signWith signs claims as a JWT with key (kid keyID).
func signWith(t *testing.T, alg jose.SignatureAlgorithm, key any, keyID string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: keyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestLogoutHintSubject: a hint names its agent only when it is an ID token
// of ours (our key, our issuer) issued to registered clients, expired or
// not; the audience is what the library's own check leaves out.
func TestLogoutHintSubject(t *testing.T) {
	ctx := context.Background()
	p := newFuzzProvider(t)
	sk, err := p.storage.SigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := func(change func(map[string]any)) map[string]any {
		c := map[string]any{"iss": fuzzIssuer, "sub": "agent-1", "aud": []string{"rh"}, "azp": "rh",
			"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix()}
		if change != nil {
			change(c)
		}
		return c
	}
	ours := func(change func(map[string]any)) string {
		return signWith(t, sk.SignatureAlgorithm(), sk.Key(), sk.ID(), claims(change))
	}
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what  string
		hint  string
		valid bool
	}{
		{"ours", ours(nil), true},
		{"ours, expired", ours(func(c map[string]any) {
			c["iat"], c["exp"] = now.Add(-48*time.Hour).Unix(), now.Add(-47*time.Hour).Unix()
		}), true},
		{"another issuer", ours(func(c map[string]any) { c["iss"] = "https://evil.example" }), false},
		{"an unregistered audience", ours(func(c map[string]any) { c["aud"], c["azp"] = []string{"gone"}, "gone" }), false},
		{"a registered and an unregistered audience", ours(func(c map[string]any) { c["aud"] = []string{"rh", "gone"} }), false},
		{"no audience", ours(func(c map[string]any) { delete(c, "aud") }), false},
		{"another key under our kid", signWith(t, jose.ES256, otherKey, sk.ID(), claims(nil)), false},
		{"not a token", "not-a-token", false},
	} {
		sub, valid, err := p.LogoutHintSubject(ctx, tc.hint)
		if err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		if valid != tc.valid || (valid && sub != "agent-1") {
			t.Errorf("%s: subject %q, valid %v; want valid %v", tc.what, sub, valid, tc.valid)
		}
	}
}
