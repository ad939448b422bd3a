package provider

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/net/html"

	"github.com/caf-extranet/idp/storage"
)

// The registered relying applications of the fuzz targets.
const (
	fuzzIssuer      = "https://idp.example.fr"
	fuzzRedirect    = "https://rh.example.fr/callback"
	fuzzSPARedirect = "https://spa.example.fr/cb?app=1"
)

// fuzzStore is the little of the store /authorize needs, in memory: a fuzz
// target must not pull a database engine into its instrumented build. Any
// other method panics (the embedded interface is nil), which the fuzzer
// reports.
type fuzzStore struct {
	storage.Store
	mu       sync.Mutex
	clients  map[string]storage.Client
	keys     []storage.SigningKey
	requests map[string]storage.AuthRequest
}

func (s *fuzzStore) GetClient(_ context.Context, id string) (storage.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return storage.Client{}, storage.ErrNotFound
	}
	return c, nil
}

func (s *fuzzStore) ListClients(context.Context) ([]storage.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.Client
	for _, c := range s.clients {
		out = append(out, c)
	}
	return out, nil
}

func (s *fuzzStore) ListSigningKeys(context.Context) ([]storage.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys), nil
}

func (s *fuzzStore) AddSigningKey(_ context.Context, k storage.SigningKey, _ string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, k)
	return nil
}

func (s *fuzzStore) CreateAuthRequest(_ context.Context, r storage.AuthRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) > 1000 { // a long fuzz run must not grow without bound
		clear(s.requests)
	}
	s.requests[r.ID] = r
	return nil
}

func (s *fuzzStore) GetAuthRequest(_ context.Context, id string, _ time.Time) (storage.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.requests[id]
	if !ok {
		return storage.AuthRequest{}, storage.ErrNotFound
	}
	return r, nil
}

func (s *fuzzStore) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	return nil
}

// newFuzzStore holds one confidential client, rh (secret "s"), and one
// public client, spa.
func newFuzzStore() *fuzzStore {
	store := &fuzzStore{clients: map[string]storage.Client{}, requests: map[string]storage.AuthRequest{}}
	for _, c := range []storage.Client{
		{ID: "rh", Name: "RH", SecretHash: storage.HashSecret("s"), RedirectURIs: []string{fuzzRedirect}, AllowRefresh: true},
		{ID: "spa", Name: "SPA", Public: true, RedirectURIs: []string{fuzzSPARedirect}},
	} {
		store.clients[c.ID] = c
	}
	return store
}

// newFuzzProvider is the real provider over a newFuzzStore.
func newFuzzProvider(tb testing.TB) *Provider { return newProviderOver(tb, newFuzzStore()) }

// newProviderOver is the real provider over store.
func newProviderOver(tb testing.TB, store storage.Store) *Provider {
	tb.Helper()
	p, err := New(context.Background(), store, Config{
		Issuer: fuzzIssuer, CodeTTL: time.Minute, AccessTTL: 15 * time.Minute, IDTokenTTL: 15 * time.Minute,
		RefreshTTL: time.Hour, AuthRequestTTL: 30 * time.Minute, KeyAlgorithm: "ES256",
		CryptoKey: [32]byte{1}, KeyEncryptionKey: [32]byte{2}, SessionCookieName: "idp_session",
		LogoutRedirect: fuzzIssuer + "/login?info=logged_out",
	}, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// FuzzAuthorizeRedirects sends any query to /authorize, behind OneValueEach
// as served. Whatever it holds, repeated parameters included, the browser is
// sent nowhere but to the hosted login page or to a registered redirect URI,
// exactly as registered: never an open redirect.
func FuzzAuthorizeRedirects(f *testing.F) {
	for _, q := range []url.Values{
		{"client_id": {"rh"}, "redirect_uri": {fuzzRedirect}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s"}},
		{"client_id": {"rh"}, "redirect_uri": {fuzzRedirect + "/../evil"}, "response_type": {"code"}, "scope": {"openid"}},
		{"client_id": {"rh"}, "redirect_uri": {"https://evil.example/callback"}, "response_type": {"code"}, "scope": {"openid"}},
		{"client_id": {"rh"}, "redirect_uri": {fuzzRedirect}, "response_type": {"token"}, "scope": {"openid"}, "response_mode": {"fragment"}},
		{"client_id": {"rh"}, "redirect_uri": {fuzzRedirect}, "response_type": {"code"}, "scope": {"openid"}, "response_mode": {"form_post"}, "prompt": {"none"}},
		{"client_id": {"spa"}, "redirect_uri": {fuzzSPARedirect}, "response_type": {"code"}, "scope": {"openid"}},
		{"client_id": {"spa"}, "redirect_uri": {fuzzSPARedirect}, "response_type": {"code"}, "scope": {"openid"}, "code_challenge": {"x"}, "code_challenge_method": {"plain"}},
	} {
		f.Add(q.Encode())
	}
	f.Add("client_id=rh&redirect_uri=https%3A%2F%2Frh.example.fr%2Fcallback%00&response_type=code&scope=openid")
	f.Add("%zz&client_id=rh")
	f.Add("client_id=rh&redirect_uri=https%3A%2F%2Frh.example.fr%2Fcallback&response_type=code&scope=openid&state=a&state=b")
	f.Add("client_id=rh&redirect_uri=https%3A%2F%2Fevil.example%2F&redirect_uri=https%3A%2F%2Frh.example.fr%2Fcallback&response_type=code&scope=openid")
	f.Add("client_id=rh&client_id=spa&redirect_uri=https%3A%2F%2Frh.example.fr%2Fcallback&response_type=code&scope=openid")
	f.Add("client_id=spa&redirect_uri=https%3A%2F%2Fspa.example.fr%2Fcb%3Fapp%3D1&response_type=code&scope=openid&response_mode=form_post&scope=openid")
	p := newFuzzProvider(f)
	h := p.OneValueEach(p.Handler())
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest(http.MethodGet, fuzzIssuer+"/authorize", nil)
		req.URL.RawQuery = rawQuery
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if loc := rec.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, "/login?authRequestID=") && !toRegistered(loc) {
			t.Fatalf("query %q redirected to %q", rawQuery, loc)
		}
		if strings.Contains(rec.Body.String(), "<form") {
			doc, err := html.Parse(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			for _, action := range formActions(doc) {
				if !toRegistered(action) {
					t.Fatalf("query %q: a form posts to %q", rawQuery, action)
				}
			}
		}
	})
}

// toRegistered: target is a registered redirect URI, as registered, with
// only the response's parameters added.
func toRegistered(target string) bool {
	for _, r := range []string{fuzzRedirect, fuzzSPARedirect} {
		if rest, ok := strings.CutPrefix(target, r); ok && (rest == "" || strings.ContainsAny(rest[:1], "?&#")) {
			return true
		}
	}
	return false
}

func formActions(n *html.Node) []string {
	var out []string
	if n.Type == html.ElementNode && n.Data == "form" {
		for _, a := range n.Attr {
			if a.Key == "action" {
				out = append(out, a.Val)
			}
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		out = append(out, formActions(c)...)
	}
	return out
}

// FuzzRedirectURIExactMatch: through our client adapter, the library accepts
// a redirect URI only when it is byte for byte a registered one (no prefix,
// case, trailing-slash or encoding leniency, no glob), and a public client's
// http URI only in development mode.
func FuzzRedirectURIExactMatch(f *testing.F) {
	f.Add("https://app.example.fr/cb", "https://app.example.fr/cb", false, false)
	f.Add("https://app.example.fr/cb", "https://app.example.fr/cb/", false, false)
	f.Add("https://app.example.fr/cb", "https://APP.example.fr/cb", false, false)
	f.Add("https://app.example.fr/cb", "https://app.example.fr/c%62", false, false)
	f.Add("https://app.example.fr/cb", "https://app.example.fr/cb?x=1", true, false)
	f.Add("https://app.example.fr/cb", "https://app.example.fr.evil.example/cb", false, false)
	f.Add("http://localhost:3000/cb", "http://localhost:3000/cb", true, false)
	f.Add("http://localhost:3000/cb", "http://localhost:3000/cb", true, true)
	f.Add("http://127.0.0.1/cb", "http://127.0.0.1:4000/cb", false, true)
	f.Add("https://app.example.fr/*", "https://app.example.fr/anything", false, false)
	f.Fuzz(func(t *testing.T, registered, requested string, public, devMode bool) {
		c := &client{c: storage.Client{ID: "app", Public: public, RedirectURIs: []string{registered}}, devMode: devMode}
		if _, globs := any(c).(op.HasRedirectGlobs); globs {
			t.Fatal("the client adapter offers redirect globs")
		}
		err := op.ValidateAuthReqRedirectURI(c, requested, oidc.ResponseTypeCode)
		if err == nil && requested != registered {
			t.Fatalf("registered %q, accepted %q", registered, requested)
		}
		if err == nil && public && !devMode && !strings.HasPrefix(requested, "https://") {
			t.Fatalf("a public client outside development mode was allowed %q", requested)
		}
	})
}
