package provider

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// keyFaultConfig is the configuration of the key-fault tests' providers.
func keyFaultConfig() Config {
	return Config{
		Issuer: fuzzIssuer, CodeTTL: time.Minute, AccessTTL: 15 * time.Minute, IDTokenTTL: 15 * time.Minute,
		RefreshTTL: time.Hour, AuthRequestTTL: 30 * time.Minute, KeyAlgorithm: "ES256",
		CryptoKey: [32]byte{1}, KeyEncryptionKey: [32]byte{2}, SessionCookieName: "idp_session",
		LogoutRedirect: fuzzIssuer + "/login?info=logged_out", KeyPublishAhead: time.Hour,
	}
}

// keyFaultProvider is a provider over st logging to h, on a clock of the
// test's: keysDue moves it past the key cache's lifetime, so that the next
// use reads the keys again. mu guards the clock (and may guard h's records).
func keyFaultProvider(t *testing.T, st storage.Store, h slog.Handler, mu *sync.Mutex) (p *Provider, keysDue func()) {
	t.Helper()
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p, err := New(context.Background(), st, keyFaultConfig(), clock, slog.New(h))
	if err != nil {
		t.Fatal(err)
	}
	return p, func() { mu.Lock(); now = now.Add(keyCacheTTL + time.Minute); mu.Unlock() }
}
