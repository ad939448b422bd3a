package provider

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/caf-extranet/idp/storage"
)

// libraryDocuments stands for the library's endpoints: it counts the
// documents it builds and numbers them, so a test can tell a cached answer
// from a fresh one.
type libraryDocuments struct {
	builds atomic.Int64
	status int
}

func (l *libraryDocuments) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := l.builds.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Build", strconv.FormatInt(n, 10))
	status := l.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, `{"path":"`+r.URL.Path+`","build":`+strconv.FormatInt(n, 10)+`}`)
}

func fetch(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestDocumentCache(t *testing.T) {
	now := time.Now()
	keys := &keyManager{now: func() time.Time { return now }, loaded: now,
		keys: []loadedKey{{}}, pubCache: []op.Key{&publicKey{id: "k1"}}}
	c := newDocumentCache(keys)
	c.setPaths("/.well-known/openid-configuration", "/keys")
	lib := &libraryDocuments{}
	h := c.intercept(lib)

	// Discovery is built once, then served from memory, whole.
	first := fetch(t, h, http.MethodGet, "/.well-known/openid-configuration")
	for range 5 {
		again := fetch(t, h, http.MethodGet, "/.well-known/openid-configuration")
		if again.Code != http.StatusOK || again.Body.String() != first.Body.String() ||
			again.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("cached discovery: %d %q %v", again.Code, again.Body.String(), again.Header())
		}
	}
	if n := lib.builds.Load(); n != 1 {
		t.Fatalf("discovery built %d times, want 1", n)
	}

	// The key set is built once per set of keys the key manager holds.
	k1 := fetch(t, h, http.MethodGet, "/keys").Body.String()
	if k2 := fetch(t, h, http.MethodGet, "/keys").Body.String(); k2 != k1 || lib.builds.Load() != 2 {
		t.Fatalf("key set not cached: %q then %q, %d builds", k1, k2, lib.builds.Load())
	}
	keys.mu.Lock()
	keys.pubCache = []op.Key{&publicKey{id: "k1"}, &publicKey{id: "k2"}} // a reload after a rotation
	keys.mu.Unlock()
	if k3 := fetch(t, h, http.MethodGet, "/keys").Body.String(); k3 == k1 || lib.builds.Load() != 3 {
		t.Fatalf("key set not rebuilt after the keys changed: %q, %d builds", k3, lib.builds.Load())
	}
	// Discovery lists the keys' algorithms: it is built again with them.
	fetch(t, h, http.MethodGet, "/.well-known/openid-configuration")
	if n := lib.builds.Load(); n != 4 {
		t.Fatalf("discovery not rebuilt after the keys changed: %d builds, want 4", n)
	}

	// HEAD gets the headers without the body; other methods and paths go
	// to the library every time.
	head := fetch(t, h, http.MethodHead, "/keys")
	if head.Code != http.StatusOK || head.Body.Len() != 0 || head.Header().Get("Content-Type") == "" {
		t.Fatalf("HEAD: %d, %d bytes, %v", head.Code, head.Body.Len(), head.Header())
	}
	before := lib.builds.Load()
	fetch(t, h, http.MethodPost, "/keys")
	fetch(t, h, http.MethodGet, "/oauth/token")
	if lib.builds.Load() != before+2 {
		t.Fatal("a POST or another path was served from the cache")
	}
}

func TestDocumentCacheKeepsOnlySuccess(t *testing.T) {
	now := time.Now()
	keys := &keyManager{now: func() time.Time { return now }, loaded: now,
		keys: []loadedKey{{}}, pubCache: []op.Key{&publicKey{id: "k1"}}}
	c := newDocumentCache(keys)
	c.setPaths("/.well-known/openid-configuration", "/keys")
	lib := &libraryDocuments{status: http.StatusInternalServerError}
	h := c.intercept(lib)
	for range 3 {
		if rec := fetch(t, h, http.MethodGet, "/.well-known/openid-configuration"); rec.Code != http.StatusInternalServerError {
			t.Fatalf("status %d, want the library's 500", rec.Code)
		}
	}
	// A failed answer is passed on as is, and not cached: every request
	// asks the library once.
	if n := lib.builds.Load(); n != 3 {
		t.Fatalf("%d builds, want 3", n)
	}
	lib.status = http.StatusOK
	fetch(t, h, http.MethodGet, "/.well-known/openid-configuration")
	n := lib.builds.Load()
	fetch(t, h, http.MethodGet, "/.well-known/openid-configuration")
	if lib.builds.Load() != n {
		t.Fatal("the first success was not cached")
	}
}

// faultyKeysStore is a fuzzStore whose key list fails on demand.
type faultyKeysStore struct {
	*fuzzStore
	mu    sync.Mutex
	fault error
}

func (s *faultyKeysStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	s.mu.Lock()
	f := s.fault
	s.mu.Unlock()
	if f != nil {
		return nil, f
	}
	return s.fuzzStore.ListSigningKeys(ctx)
}

func (s *faultyKeysStore) fail(err error) {
	s.mu.Lock()
	s.fault = err
	s.mu.Unlock()
}

// discoveredAlgorithms is discovery's id_token_signing_alg_values_supported.
func discoveredAlgorithms(t *testing.T, rec *httptest.ResponseRecorder) []string {
	t.Helper()
	var d struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		t.Fatalf("discovery: %d %q: %v", rec.Code, rec.Body, err)
	}
	return d.Algs
}

// TestDiscoveryKeepsItsAlgorithmsThroughADatabaseFault:
// id_token_signing_alg_values_supported is REQUIRED (OIDC Discovery §3). A
// discovery request that comes when the key cache is due while the database
// fails got a 200 document without it, and a relying application starting
// then (go-oidc) assumed RS256 and rejected every ES256 ID token until it
// restarted. It lists the algorithms of the keys the instance holds.
func TestDiscoveryKeepsItsAlgorithmsThroughADatabaseFault(t *testing.T) {
	store := &faultyKeysStore{fuzzStore: newFuzzStore()}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p, err := New(context.Background(), store, Config{
		Issuer: fuzzIssuer, CodeTTL: time.Minute, AccessTTL: 15 * time.Minute, IDTokenTTL: 15 * time.Minute,
		RefreshTTL: time.Hour, AuthRequestTTL: 30 * time.Minute, KeyAlgorithm: "ES256",
		CryptoKey: [32]byte{1}, KeyEncryptionKey: [32]byte{2}, SessionCookieName: "idp_session",
		LogoutRedirect: fuzzIssuer + "/login?info=logged_out",
	}, clock, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	discovery := func() *httptest.ResponseRecorder {
		return fetch(t, p.Handler(), http.MethodGet, fuzzIssuer+"/.well-known/openid-configuration")
	}
	if rec := discovery(); rec.Code != http.StatusOK || !slices.Equal(discoveredAlgorithms(t, rec), []string{"ES256"}) {
		t.Fatalf("discovery: %d %q", rec.Code, rec.Body)
	}
	jwks := fetch(t, p.Handler(), http.MethodGet, fuzzIssuer+"/keys")
	mu.Lock()
	now = now.Add(keyCacheTTL + time.Minute) // the keys are due: the next use reads them
	mu.Unlock()
	store.fail(errors.New("connection refused"))
	if rec := discovery(); rec.Code == http.StatusOK && !slices.Equal(discoveredAlgorithms(t, rec), []string{"ES256"}) {
		t.Fatalf("discovery while the key table cannot be read: %q, want ES256 listed", rec.Body)
	}
	// The documents served through the fault are the last good ones: the
	// provider's own discovery (the code flow only), the same key set.
	rec := discovery()
	var d oidc.DiscoveryConfiguration
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil || rec.Code != http.StatusOK ||
		!slices.Equal(d.ResponseTypesSupported, []string{"code"}) || d.DeviceAuthorizationEndpoint != "" {
		t.Fatalf("discovery through the fault: %d, response types %v, device endpoint %q", rec.Code, d.ResponseTypesSupported, d.DeviceAuthorizationEndpoint)
	}
	if rec := fetch(t, p.Handler(), http.MethodGet, fuzzIssuer+"/keys"); rec.Code != http.StatusOK || rec.Body.String() != jwks.Body.String() {
		t.Fatalf("key set through the fault: %d %s, want %s", rec.Code, rec.Body, jwks.Body)
	}
}

// TestDocumentCacheKeepsNoRenderingFromAFailedRead: a discovery document
// rendered while the keys fell due (a change elsewhere invalidated them)
// and could not be read again lists the algorithms of the keys held as a
// fallback; it is served, not kept.
func TestDocumentCacheKeepsNoRenderingFromAFailedRead(t *testing.T) {
	now := time.Now()
	store := &faultyKeysStore{fuzzStore: newFuzzStore()}
	keys := &keyManager{store: store, alg: "ES256", now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler),
		loaded: now, keys: []loadedKey{{rec: storage.SigningKey{Algorithm: "ES256"}}}, pubCache: []op.Key{&publicKey{id: "k1"}}}
	c := newDocumentCache(keys)
	c.setPaths("/.well-known/openid-configuration", "/keys")
	lib := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys.invalidate()
		store.fail(errors.New("connection refused"))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string][]jose.SignatureAlgorithm{
			"id_token_signing_alg_values_supported": keys.algorithms(r.Context())})
	})
	rec := fetch(t, c.intercept(lib), http.MethodGet, "/.well-known/openid-configuration")
	if rec.Code != http.StatusOK || !slices.Equal(discoveredAlgorithms(t, rec), []string{"ES256"}) {
		t.Fatalf("discovery rendered during a failed read: %d %q", rec.Code, rec.Body)
	}
	c.mu.RLock()
	kept := c.discovery.doc != nil
	c.mu.RUnlock()
	if kept {
		t.Fatal("a rendering made while the keys could not be read again was cached")
	}
}
