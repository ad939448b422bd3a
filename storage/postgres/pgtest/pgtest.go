// Package pgtest gives each test a PostgreSQL schema of its own, so that
// tests can run in parallel against one local server without seeing each
// other's rows.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable holding the base URL of the test server.
const EnvURL = "IDP_TEST_POSTGRES_URL"

// defaultURL is the local server of the development machines and CI, with
// trust authentication.
const defaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// connectTimeout bounds each attempt, so that a missing server skips (or
// fails) quickly instead of hanging the test binary.
const connectTimeout = 5 * time.Second

// URL returns a connection URL to a fresh, empty schema of its own: created
// with a random name, selected through search_path in the URL, dropped with
// CASCADE when the test ends. The base URL comes from IDP_TEST_POSTGRES_URL
// (default: the local server as role postgres, then as role root). Without a
// reachable server the test is skipped, or fails when CI=true, where
// PostgreSQL is required.
func URL(t testing.TB) string {
	t.Helper()
	base, conn, err := connect()
	if err != nil {
		msg := fmt.Sprintf("pgtest: PostgreSQL is required for this test and is not reachable "+
			"(set %s, default %s): %v", EnvURL, defaultURL, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	defer func() { _ = conn.Close(ctx) }()

	schema := "test_" + randomHex(8)
	// The name is ours (letters, digits, underscore): no quoting issue.
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() { dropSchema(t, base, schema) })

	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("pgtest: parse %s: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// connect opens a connection to the first candidate base URL that answers.
func connect() (string, *pgx.Conn, error) {
	candidates := []string{defaultURL, "postgres://root@127.0.0.1:5432/test?sslmode=disable"}
	if env := os.Getenv(EnvURL); env != "" {
		candidates = []string{env}
	}
	var firstErr error
	for _, base := range candidates {
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		conn, err := pgx.Connect(ctx, base)
		cancel()
		if err == nil {
			return base, conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return "", nil, firstErr
}

func dropSchema(t testing.TB, base, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Errorf("pgtest: drop schema %s: %v", schema, err)
		return
	}
	defer func() { _ = conn.Close(ctx) }()
	if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
		t.Errorf("pgtest: drop schema %s: %v", schema, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
