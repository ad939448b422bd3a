package sqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, to inspect the file directly

	"github.com/caf-extranet/idp/migrations"
	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/sqlite"
	"github.com/caf-extranet/idp/storage/storetest"
)

// openStore opens the file at path (without migrating) and closes it when
// the test ends.
func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close %s: %v", path, err)
		}
	})
	return s
}

func migrate(t *testing.T, s *sqlite.Store) {
	t.Helper()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storage.Store {
		s := openStore(t, filepath.Join(t.TempDir(), "idp.db"))
		migrate(t, s)
		return s
	})
}

func latest(t *testing.T) int {
	t.Helper()
	v, err := migrations.Latest(migrations.SQLite)
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

// snapshot reads, through a connection of its own, the file's whole schema
// and its migration records (applied_at included, so that a migration run
// again and recorded again shows).
func snapshot(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	var b strings.Builder
	dump := func(query string, cols int) {
		rows, err := db.QueryContext(t.Context(), query)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		defer rows.Close()
		for rows.Next() {
			vals := make([]any, cols)
			ptrs := make([]any, cols)
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("scan %s: %v", query, err)
			}
			fmt.Fprintln(&b, vals...)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	dump(`SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_schema ORDER BY type, name`, 4)
	dump(`SELECT version, name, applied_at FROM schema_migrations ORDER BY version`, 3)
	return b.String()
}

// assertRecorded checks that schema_migrations holds each version from 1 to
// latest exactly once.
func assertRecorded(t *testing.T, path string, latest int) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	var n, distinct, lo, hi int
	err = db.QueryRowContext(t.Context(),
		`SELECT COUNT(*), COUNT(DISTINCT version), MIN(version), MAX(version) FROM schema_migrations`,
	).Scan(&n, &distinct, &lo, &hi)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	if n != latest || distinct != latest || lo != 1 || hi != latest {
		t.Errorf("schema_migrations: %d rows, %d versions, from %d to %d; want each of 1..%d once", n, distinct, lo, hi, latest)
	}
}

func TestMigrateTwiceAndVersion(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "idp.db")
	s := openStore(t, path)
	assertVersion(t, s, 0)

	migrate(t, s)
	assertVersion(t, s, latest(t))
	assertRecorded(t, path, latest(t))
	now := time.Date(2026, time.March, 14, 9, 30, 0, 0, time.UTC)
	u := storage.User{ID: "u-1", Email: "agent@example.fr", Name: "Agent", CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	before := snapshot(t, path)

	migrate(t, s)
	assertVersion(t, s, latest(t))
	if after := snapshot(t, path); after != before {
		t.Errorf("a second Migrate changed the schema or its records:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := s.GetUser(ctx, "u-1"); err != nil {
		t.Errorf("GetUser after a second Migrate: %v", err)
	}

	// A store opened later on the migrated file finds it up to date.
	again := openStore(t, path)
	migrate(t, again)
	assertVersion(t, again, latest(t))
	if after := snapshot(t, path); after != before {
		t.Errorf("Migrate from a new Store changed the schema or its records:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// Two Store values on one new file migrate at the same time: each
// migration must run once and both must end up working on the same data.
func TestConcurrentMigrate(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "idp.db")
			stores := []*sqlite.Store{openStore(t, path), openStore(t, path)}
			errs := startTogether(len(stores), func(i int) error { return stores[i].Migrate(t.Context()) })
			for i, err := range errs {
				if err != nil {
					t.Fatalf("Migrate on store %d: %v", i, err)
				}
			}
			assertBothMigrated(t, path, stores)
		})
	}
}

// Two processes starting together on a file that does not exist yet: both
// open it (the first open creates it and switches it to WAL) and migrate at
// the same time. Several rounds, because the window is narrow.
func TestConcurrentOpenAndMigrate(t *testing.T) {
	for round := range 10 {
		t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "idp.db")
			stores := make([]*sqlite.Store, 2)
			errs := startTogether(len(stores), func(i int) error {
				s, err := sqlite.Open(ctx, path)
				if err != nil {
					return fmt.Errorf("Open: %w", err)
				}
				stores[i] = s
				if err := s.Migrate(ctx); err != nil {
					return fmt.Errorf("Migrate: %w", err)
				}
				return nil
			})
			for i, s := range stores {
				if s != nil {
					t.Cleanup(func() {
						if err := s.Close(); err != nil {
							t.Errorf("Close store %d: %v", i, err)
						}
					})
				}
			}
			for i, err := range errs {
				if err != nil {
					t.Fatalf("instance %d: %v", i, err)
				}
			}
			assertBothMigrated(t, path, stores)
		})
	}
}

// startTogether runs f(0) … f(n-1) in goroutines released at the same
// moment and returns their errors.
func startTogether(n int, f func(i int) error) []error {
	errs := make([]error, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-gate
			errs[i] = f(i)
		})
	}
	close(gate)
	wg.Wait()
	return errs
}

// assertBothMigrated checks the version seen by each store, the migration
// records, and that the stores share their data.
func assertBothMigrated(t *testing.T, path string, stores []*sqlite.Store) {
	t.Helper()
	ctx := t.Context()
	for _, s := range stores {
		assertVersion(t, s, latest(t))
	}
	assertRecorded(t, path, latest(t))
	now := time.Date(2026, time.March, 14, 9, 30, 0, 0, time.UTC)
	u := storage.User{ID: "u-1", Email: "agent@example.fr", Name: "Agent", CreatedAt: now, UpdatedAt: now}
	if err := stores[0].CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser through store 0: %v", err)
	}
	if _, err := stores[1].GetUserByEmail(ctx, "agent@example.fr"); err != nil {
		t.Errorf("GetUserByEmail through store 1: %v", err)
	}
}

// Two processes may share one file (the server and an administration
// command): atomicity must hold across Store values, not only within one
// store's connection pool.
func TestTwoStoresOnOneFileStayAtomic(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "idp.db")
	a := openStore(t, path)
	migrate(t, a)
	b := openStore(t, path)
	stores := []*sqlite.Store{a, b}
	now := time.Date(2026, time.March, 14, 9, 30, 0, 0, time.UTC)
	challenge := storage.Challenge{ID: "ch-1", Kind: storage.ChallengeImage, AnswerHash: "h", BindingHash: "b", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if _, err := a.CreateCountedChallenge(ctx, "test:ch-1", time.Hour, 1, challenge, now); err != nil {
		t.Fatalf("CreateCountedChallenge: %v", err)
	}

	const n = 20
	counts := make([]int64, n)
	counterErrs := make([]error, n)
	consumeErrs := make([]error, n)
	startTogether(n, func(i int) error {
		s := stores[i%2]
		counts[i], counterErrs[i] = s.HitCounter(ctx, "login:agent@example.fr", time.Hour, now)
		_, consumeErrs[i] = s.ConsumeChallenge(ctx, challenge.ID, now)
		return nil
	})

	seen := make(map[int64]int)
	winners := 0
	for i := range n {
		if counterErrs[i] != nil {
			t.Fatalf("HitCounter in goroutine %d: %v", i, counterErrs[i])
		}
		seen[counts[i]]++
		switch err := consumeErrs[i]; {
		case err == nil:
			winners++
		case !errors.Is(err, storage.ErrNotFound):
			t.Errorf("ConsumeChallenge in goroutine %d: %v, want nil or ErrNotFound", i, err)
		}
	}
	for c := int64(1); c <= n; c++ {
		if seen[c] != 1 {
			t.Errorf("count %d returned %d times across two stores, want once (counts %v)", c, seen[c], counts)
		}
	}
	if winners != 1 {
		t.Errorf("%d goroutines consumed the challenge across two stores, want exactly 1", winners)
	}
}
