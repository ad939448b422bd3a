package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage/postgres/pgtest"
)

// internalOpen opens a store on url and closes it when the test ends.
func internalOpen(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// A recorded migration whose name differs from the binary's file means the
// files were renumbered: Migrate must refuse rather than skip it silently.
func TestMigrateRejectsRenamedMigration(t *testing.T) {
	ctx := t.Context()
	s := internalOpen(t, pgtest.URL(t))
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE schema_migrations SET name = 'something_else' WHERE version = 1`); err != nil {
		t.Fatal(err)
	}
	err := s.Migrate(ctx)
	if err == nil || !strings.Contains(err.Error(), "something_else") {
		t.Errorf("Migrate over a renamed migration: err = %v, want one naming the recorded migration", err)
	}
}

// Schemas are isolated through search_path: a table created by one test's
// migrations is not visible from another's.
func TestSchemasAreIsolated(t *testing.T) {
	ctx := t.Context()
	a := internalOpen(t, pgtest.URL(t))
	b := internalOpen(t, pgtest.URL(t))
	if err := a.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if v, err := b.SchemaVersion(ctx); err != nil || v != 0 {
		t.Errorf("other schema: SchemaVersion = %d, %v; want 0, nil", v, err)
	}
}

// An unreachable server fails Open with an error saying so, quickly.
func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens, the connection is refused at once.
	s, err := Open(ctx, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2")
	if err == nil {
		_ = s.Close()
		t.Fatal("Open on a closed port succeeded")
	}
	if !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("Open error = %q, want it to say the database cannot be reached", err)
	}
}
