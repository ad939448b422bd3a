package provider

import (
	"context"
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
}

func (s *revocationStore) GetRefreshToken(_ context.Context, hash string, _ time.Time) (storage.RefreshToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refresh[hash]
	if !ok {
		return storage.RefreshToken{}, storage.ErrNotFound
	}
	return t, nil
}

func (s *revocationStore) GetAccessToken(context.Context, string, time.Time) (storage.AccessToken, error) {
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
			form := url.Values{"token": {raw}}
			if hint != "" {
				form.Set("token_type_hint", hint)
			}
			req := httptest.NewRequest(http.MethodPost, fuzzIssuer+"/revoke", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("rh", "s")
			rec := httptest.NewRecorder()
			p.Handler().ServeHTTP(rec, req)
			revoked := store.revokedGrants()
			if rec.Code != http.StatusOK || len(revoked) == 0 || revoked[len(revoked)-1] != grant {
				t.Fatalf("refresh token %.8s… with hint %q: %d %s, grants revoked %v (want %s last)",
					raw, hint, rec.Code, rec.Body, revoked, grant)
			}
		}
	}
}
