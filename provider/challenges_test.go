package provider

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/sqlite"
)

// tokenFaultStore answers every access token read with err.
type tokenFaultStore struct {
	*sqlite.Store
	err error
}

func (s *tokenFaultStore) GetAccessToken(context.Context, string, time.Time) (storage.AccessToken, error) {
	return storage.AccessToken{}, s.err
}

// A token userinfo cannot read because the database fails is not the
// token's fault: 500, no invalid_token that would make the client throw it
// away; a token the database does not know is invalid_token.
func TestUserinfoDatabaseFaultIsNotInvalidToken(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "idp.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	store := &tokenFaultStore{Store: db}
	p, err := New(ctx, store, Config{Issuer: "https://connexion.example.fr", CodeTTL: time.Minute,
		AccessTTL: 15 * time.Minute, IDTokenTTL: 15 * time.Minute, RefreshTTL: time.Hour,
		AuthRequestTTL: 30 * time.Minute, KeyAlgorithm: "ES256", CryptoKey: [32]byte{1},
		KeyEncryptionKey: [32]byte{2}, SessionCookieName: "idp_session"}, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	// An opaque access token as the library issues them: its id and
	// subject, encrypted.
	token, err := p.op.Crypto().Encrypt("at1:u1")
	if err != nil {
		t.Fatal(err)
	}
	ask := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "https://connexion.example.fr/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		p.Handler().ServeHTTP(rec, req)
		return rec
	}

	store.err = errors.New("connection refused")
	if rec := ask(); rec.Code != http.StatusInternalServerError || rec.Header().Get("WWW-Authenticate") != "" ||
		!strings.Contains(rec.Body.String(), "server_error") {
		t.Fatalf("database fault: %d, WWW-Authenticate %q, %s", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
	store.err = storage.ErrNotFound
	if rec := ask(); rec.Code != http.StatusUnauthorized ||
		rec.Header().Get("WWW-Authenticate") != `Bearer realm="https://connexion.example.fr", error="invalid_token"` {
		t.Fatalf("unknown token: %d, WWW-Authenticate %q, %s", rec.Code, rec.Header().Get("WWW-Authenticate"), rec.Body)
	}
}
