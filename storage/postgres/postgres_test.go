package postgres_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/migrations"
	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/postgres"
	"github.com/caf-extranet/idp/storage/postgres/pgtest"
	"github.com/caf-extranet/idp/storage/storetest"
)

// openStore opens a store on url (without migrating) and closes it when the
// test ends.
func openStore(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func migrate(t *testing.T, s *postgres.Store) {
	t.Helper()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
}

// Each subtest gets a schema of its own.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		s := openStore(t, pgtest.URL(t))
		migrate(t, s)
		return s
	})
}

func latest(t *testing.T) int {
	t.Helper()
	v, err := migrations.Latest(migrations.Postgres)
	if err != nil {
		t.Fatalf("migrations.Latest: %v", err)
	}
	return v
}

func assertVersion(t *testing.T, s storage.Store, want int) {
	t.Helper()
	got, err := s.SchemaVersion(t.Context())
	if err != nil {
		t.Fatalf("SchemaVersion: %v", err)
	}
	if got != want {
		t.Errorf("SchemaVersion = %d, want %d", got, want)
	}
}

// inspect runs fn on a connection of its own to url, whose search_path is
// the test's schema.
func inspect(t *testing.T, url string, fn func(conn *pgx.Conn)) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect to inspect the schema: %v", err)
	}
	defer func() { _ = conn.Close(t.Context()) }()
	fn(conn)
}

// snapshot reads the schema's tables, columns, indexes and constraints, and
// its migration records (applied_at included, so that a migration run again
// and recorded again shows).
func snapshot(t *testing.T, url string) string {
	t.Helper()
	var b strings.Builder
	inspect(t, url, func(conn *pgx.Conn) {
		for _, query := range []string{
			`SELECT table_name, column_name, data_type, is_nullable, COALESCE(column_default, '')
			   FROM information_schema.columns WHERE table_schema = current_schema()
			  ORDER BY table_name, column_name`,
			`SELECT tablename, indexname, indexdef FROM pg_indexes
			  WHERE schemaname = current_schema() ORDER BY tablename, indexname`,
			`SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
			  WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2`,
			`SELECT version::text, name, applied_at::text FROM schema_migrations ORDER BY version`,
		} {
			rows, err := conn.Query(t.Context(), query)
			if err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			for rows.Next() {
				vals, err := rows.Values()
				if err != nil {
					t.Fatalf("%s: %v", query, err)
				}
				fmt.Fprintln(&b, vals...)
			}
			if err := rows.Err(); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
		}
	})
	return b.String()
}

// assertRecorded checks that schema_migrations holds each version from 1 to
// latest exactly once.
func assertRecorded(t *testing.T, url string, latest int) {
	t.Helper()
	inspect(t, url, func(conn *pgx.Conn) {
		var n, distinct, lo, hi int
		err := conn.QueryRow(t.Context(),
			`SELECT count(*), count(DISTINCT version), min(version), max(version) FROM schema_migrations`,
		).Scan(&n, &distinct, &lo, &hi)
		if err != nil {
			t.Fatalf("read schema_migrations: %v", err)
		}
		if n != latest || distinct != latest || lo != 1 || hi != latest {
			t.Errorf("schema_migrations: %d rows, %d versions, from %d to %d; want each of 1..%d once", n, distinct, lo, hi, latest)
		}
	})
}

func testUser(now time.Time) storage.User {
	return storage.User{ID: "u-1", Email: "agent@example.fr", Name: "Agent", CreatedAt: now, UpdatedAt: now}
}

func TestMigrateTwiceAndVersion(t *testing.T) {
	ctx := t.Context()
	url := pgtest.URL(t)
	s := openStore(t, url)
	assertVersion(t, s, 0)

	migrate(t, s)
	assertVersion(t, s, latest(t))
	assertRecorded(t, url, latest(t))
	if err := s.CreateUser(ctx, testUser(time.Date(2026, time.March, 14, 9, 30, 0, 0, time.UTC))); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	before := snapshot(t, url)

	migrate(t, s)
	assertVersion(t, s, latest(t))
	if after := snapshot(t, url); after != before {
		t.Errorf("a second Migrate changed the schema or its records:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := s.GetUser(ctx, "u-1"); err != nil {
		t.Errorf("GetUser after a second Migrate: %v", err)
	}

	// A store opened later on the migrated schema finds it up to date.
	again := openStore(t, url)
	migrate(t, again)
	assertVersion(t, again, latest(t))
	if after := snapshot(t, url); after != before {
		t.Errorf("Migrate from a new Store changed the schema or its records:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// Several instances starting together on one empty schema: every Migrate
// succeeds, each migration is applied once, and all instances work on the
// same data.
func TestConcurrentMigrate(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			ctx := t.Context()
			url := pgtest.URL(t)
			const instances = 4
			stores := make([]*postgres.Store, instances)
			for i := range stores {
				stores[i] = openStore(t, url)
			}
			errs := make([]error, instances)
			gate := make(chan struct{})
			var wg sync.WaitGroup
			for i, s := range stores {
				wg.Go(func() {
					<-gate
					errs[i] = s.Migrate(ctx)
				})
			}
			close(gate)
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("Migrate on instance %d: %v", i, err)
				}
			}
			for _, s := range stores {
				assertVersion(t, s, latest(t))
			}
			assertRecorded(t, url, latest(t))

			if err := stores[0].CreateUser(ctx, testUser(time.Date(2026, time.March, 14, 9, 30, 0, 0, time.UTC))); err != nil {
				t.Fatalf("CreateUser through instance 0: %v", err)
			}
			for i, s := range stores[1:] {
				if _, err := s.GetUserByEmail(ctx, "agent@example.fr"); err != nil {
					t.Errorf("GetUserByEmail through instance %d: %v", i+1, err)
				}
			}
		})
	}
}
