package provider

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/postgres"
	"github.com/caf-extranet/idp/storage/postgres/pgtest"
)

// RFC 7009 §2.2: a token the server does not know (expired, revoked) is
// answered 200. A refresh token of this provider (storage.NewSecret) that is
// no longer in force misses GetRefreshTokenInfo, so the library tries it as
// an access token: its composite crypto falls back to unauthenticated
// AES-CFB, which decrypts any 32 random bytes, and about one refresh token in
// twenty comes out as "<id>:<subject>" with an id that is no UTF-8, which
// PostgreSQL cannot hold. That id names no token (200), not a database
// fault (503 with Retry-After, which an honest client would retry for ever).
func TestRevocationOfAnUnknownTokenReadAsAnUnstorableIdIs200(t *testing.T) {
	s, err := postgres.Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(t.Context(), storage.Client{ID: "rh", Name: "RH", SecretHash: storage.HashSecret("s"),
		RedirectURIs: []string{fuzzRedirect}, AllowRefresh: true, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	p := newProviderOver(t, s)
	var raw string // a refresh token as the provider issues them, not (or no longer) in the database
	for range 10000 {
		c := storage.NewSecret()
		plain, err := p.op.Crypto().Decrypt(c)
		if err != nil {
			continue
		}
		id, sub, ok := strings.Cut(plain, ":")
		if ok && sub != "" && !strings.Contains(sub, ":") && (!utf8.ValidString(id) || strings.ContainsRune(id, 0)) {
			raw = c
			break
		}
	}
	if raw == "" {
		t.Fatal("no candidate found")
	}
	for _, hint := range []string{"", "refresh_token"} {
		rec := revoke(p, raw, hint)
		if rec.Code != http.StatusOK {
			t.Errorf("unknown refresh token %s, hint %q: %d Retry-After %q %s; want 200 (RFC 7009 §2.2)",
				raw, hint, rec.Code, rec.Header().Get("Retry-After"), strings.TrimSpace(rec.Body.String()))
		}
	}
}
