package provider

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/caf-extranet/idp/storage"
)

// revocationStore holds refresh tokens of rh in memory and records the
// grants revoked; it knows no access token.
type revocationStore struct {
	*fuzzStore
	mu      sync.Mutex
	refresh map[string]storage.RefreshToken // by hash
	revoked []string                        // grant ids
	fault   error                           // when set, what every token read returns
}

func (s *revocationStore) GetRefreshToken(_ context.Context, hash string, _ time.Time) (storage.RefreshToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault != nil {
		return storage.RefreshToken{}, s.fault
	}
	t, ok := s.refresh[hash]
	if !ok {
		return storage.RefreshToken{}, storage.ErrNotFound
	}
	return t, nil
}

func (s *revocationStore) GetAccessToken(context.Context, string, time.Time) (storage.AccessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault != nil {
		return storage.AccessToken{}, s.fault
	}
	return storage.AccessToken{}, storage.ErrNotFound
}

func (s *revocationStore) RevokeGrant(_ context.Context, grantID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = append(s.revoked, grantID)
	for h, t := range s.refresh {
		if t.GrantID == grantID {
			delete(s.refresh, h)
		}
	}
	return nil
}

func (s *revocationStore) add(raw, grantID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh[storage.HashSecret(raw)] = storage.RefreshToken{TokenHash: storage.HashSecret(raw), GrantID: grantID, ClientID: "rh", UserID: "u1"}
}

func (s *revocationStore) revokedGrants() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.revoked...)
}

// revoke posts a revocation of raw with hint (none when empty) as client rh.
func revoke(p *Provider, raw, hint string) *httptest.ResponseRecorder {
	form := url.Values{"token": {raw}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	req := httptest.NewRequest(http.MethodPost, fuzzIssuer+"/revoke", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rh", "s")
	rec := httptest.NewRecorder()
	p.Handler().ServeHTTP(rec, req)
	return rec
}

// RFC 7009 §2.2.1: a revocation the database could not look up is no 200,
// which would tell the client a live token is dead, nor a 500, which tells
// it nothing: it is 503 with Retry-After, which tells it to assume the
// token still exists and retry after a delay; the body is server_error. A
// token the database does not know is a 200.
func TestRevocationDatabaseFaultIsNotRevoked(t *testing.T) {
	store := &revocationStore{fuzzStore: newFuzzStore(), refresh: map[string]storage.RefreshToken{}}
	p := newProviderOver(t, store)
	access, err := p.op.Crypto().Encrypt("at1:u1") // an access token as the library issues them
	if err != nil {
		t.Fatal(err)
	}
	refresh := storage.NewSecret()
	store.add(refresh, "g1")
	store.fault = errors.New("connection refused")
	for _, c := range []struct{ raw, hint string }{{refresh, ""}, {refresh, "refresh_token"}, {access, "access_token"}} {
		rec := revoke(p, c.raw, c.hint)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
			errorCode(rec.Body.Bytes()) != "server_error" {
			t.Errorf("database down, token %.8s… hint %q: %d, Retry-After %q, %s; want 503 server_error with Retry-After",
				c.raw, c.hint, rec.Code, rec.Header().Get("Retry-After"), rec.Body)
		}
	}
	if g := store.revokedGrants(); len(g) != 0 {
		t.Fatalf("grants revoked while the database failed: %v", g)
	}
	store.fault = nil
	for _, raw := range []string{access, storage.NewSecret()} {
		if rec := revoke(p, raw, ""); rec.Code != http.StatusOK {
			t.Errorf("unknown token %.8s…: %d %s; want 200", raw, rec.Code, rec.Body)
		}
	}
}

// RFC 7009 §2.1: a refresh token is revoked whatever token_type_hint says,
// including one whose value the library's fallback decryption of access
// tokens (AES-CFB, unauthenticated) reads as an id and a subject, as it
// does about one random refresh token in sixteen.
func TestRevocationFindsARefreshTokenWhateverItsHint(t *testing.T) {
	store := &revocationStore{fuzzStore: newFuzzStore(), refresh: map[string]storage.RefreshToken{}}
	p := newProviderOver(t, store)
	//lint:ignore SA1019 the library still decrypts AES-CFB values, which is the point
	lookalike, err := op.NewAESCrypto(p.cfg.CryptoKey).Encrypt("at1:u1")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.op.Crypto().Decrypt(lookalike); err != nil || got != "at1:u1" {
		t.Fatalf("the lookalike refresh token decrypts to %q, %v", got, err)
	}
	for _, raw := range []string{storage.NewSecret(), lookalike} {
		for _, hint := range []string{"access_token", "refresh_token", ""} {
			grant := storage.NewID()
			store.add(raw, grant)
			rec := revoke(p, raw, hint)
			revoked := store.revokedGrants()
			if rec.Code != http.StatusOK || len(revoked) == 0 || revoked[len(revoked)-1] != grant {
				t.Fatalf("refresh token %.8s… with hint %q: %d %s, grants revoked %v (want %s last)",
					raw, hint, rec.Code, rec.Body, revoked, grant)
			}
		}
	}
}
