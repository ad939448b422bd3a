package provider

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type warnCounter struct {
	n *atomic.Int64
}

func (w warnCounter) Enabled(_ context.Context, l slog.Level) bool { return true }
func (w warnCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		w.n.Add(1)
	}
	return nil
}
func (w warnCounter) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w warnCounter) WithGroup(string) slog.Handler      { return w }

// TestKeyFaultIsLoggedOncePerStreak: through a database fault the keys
// held serve every request; the fault is logged once, not once per key set,
// discovery or signature, as the change watcher logs its own.
func TestKeyFaultIsLoggedOncePerStreak(t *testing.T) {
	st := &faultyKeysStore{fuzzStore: newFuzzStore()}
	cfg := Config{
		Issuer: fuzzIssuer, CodeTTL: time.Minute, AccessTTL: 15 * time.Minute, IDTokenTTL: 15 * time.Minute,
		RefreshTTL: time.Hour, AuthRequestTTL: 30 * time.Minute, KeyAlgorithm: "ES256",
		CryptoKey: [32]byte{1}, KeyEncryptionKey: [32]byte{2}, SessionCookieName: "idp_session",
		LogoutRedirect: fuzzIssuer + "/login?info=logged_out", KeyPublishAhead: time.Hour,
	}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var warns atomic.Int64
	p, err := New(context.Background(), st, cfg, clock, slog.New(warnCounter{&warns}))
	if err != nil {
		t.Fatal(err)
	}
	h := p.Handler()
	fetch(t, h, http.MethodGet, fuzzIssuer+"/keys")
	st.fail(errors.New("connection refused"))
	mu.Lock()
	now = now.Add(keyCacheTTL + time.Minute)
	mu.Unlock()
	warns.Store(0)
	const requests = 50
	for range requests {
		if rec := fetch(t, h, http.MethodGet, fuzzIssuer+"/keys"); rec.Code != http.StatusOK {
			t.Fatalf("key set through the fault: %d", rec.Code)
		}
		if _, err := p.keys.signingKey(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := warns.Load(); n > 1 {
		t.Errorf("one fault, %d requests: %d warnings logged (want one per streak, as changeWatcher)", requests, n)
	}
}
