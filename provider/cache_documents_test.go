package provider

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/op"
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
