package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/caf-extranet/idp/config"
	"github.com/caf-extranet/idp/storage/postgres/pgtest"
)

// The hot paths of the provider over real HTTP, with the bench's clients
// (x/oauth2, go-oidc): `go test ./cmd/idp -run XXX -bench .`. Each op is one
// whole exchange as a relying application sees it, the client's work
// included.

// benchEngines runs fn on SQLite and PostgreSQL.
func benchEngines(b *testing.B, fn func(b *testing.B, databaseURL string)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, "sqlite:"+filepath.Join(b.TempDir(), "idp.db")) })
	b.Run("postgres", func(b *testing.B) { fn(b, pgtest.URL(b)) })
}

// benchProvider serves a provider in-process with a client and one agent,
// and returns the bench's relying application and browser factory for it.
func benchProvider(b *testing.B, databaseURL string) *benchTarget {
	b.Helper()
	ctx := context.Background()
	ts := httptest.NewUnstartedServer(nil)
	c, err := config.Load("", nil)
	if err != nil {
		b.Fatal(err)
	}
	c.Issuer, c.DatabaseURL, c.DataDir = "http://"+ts.Listener.Addr().String(), databaseURL, b.TempDir()
	srv, err := newServer(ctx, c, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	ts.Config.Handler = srv.handler
	ts.Start()
	b.Cleanup(func() { ts.Close(); srv.store.Close() })

	o := benchOptions{url: c.Issuer, workers: 4, redirectURI: "http://127.0.0.1:9/bench/callback",
		email: "agent@bench.example.fr", agents: 1, password: "motdepasse1"}
	if err := benchSetup(ctx, c, srv.store, &o, io.Discard); err != nil {
		b.Fatal(err)
	}
	t, err := newBenchTarget(ctx, o)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// BenchmarkRefreshGrant is token issuance from a refresh token: rotation in
// the database and one ID-token signature.
func BenchmarkRefreshGrant(b *testing.B) {
	benchEngines(b, func(b *testing.B, databaseURL string) {
		t := benchProvider(b, databaseURL)
		ctx := context.Background()
		tok, err := t.login(ctx, t.newBrowser(), "agent@bench.example.fr")
		if err != nil {
			b.Fatal(err)
		}
		current := tok.RefreshToken
		b.ReportAllocs()
		for b.Loop() {
			next, err := t.refresh(ctx, current)
			if err != nil {
				b.Fatal(err)
			}
			current = next.RefreshToken
		}
	})
}

// BenchmarkSSOLogin is a login into an application by a browser holding a
// session: authorize, the login page's session lookup, the callback, the
// code exchange with PKCE, the ID token verified.
func BenchmarkSSOLogin(b *testing.B) {
	benchEngines(b, func(b *testing.B, databaseURL string) {
		t := benchProvider(b, databaseURL)
		ctx := context.Background()
		br := t.newBrowser()
		if _, err := t.login(ctx, br, "agent@bench.example.fr"); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := t.sso(ctx, br); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDiscovery is a relying application fetching the discovery
// document, served from memory.
func BenchmarkDiscovery(b *testing.B) {
	t := benchProvider(b, "sqlite:"+filepath.Join(b.TempDir(), "idp.db"))
	ctx := context.Background()
	url := t.opts.url + "/.well-known/openid-configuration"
	b.ReportAllocs()
	for b.Loop() {
		if err := t.document(ctx, url); err != nil {
			b.Fatal(err)
		}
	}
}
