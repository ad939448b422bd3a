package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/migrations"
)

// migrationLockKey is the pg_advisory_xact_lock key that serialises
// migrations ("idpmigr" in ASCII). Advisory locks are database-wide, not
// per schema: instances (or tests) using different schemas of one database
// wait for each other while migrating, which is harmless.
const migrationLockKey int64 = 0x6964706d696772

// Migrate applies the pending migrations, each in its own transaction under
// the advisory lock, and records each in schema_migrations. Instances starting
// together queue on the lock; each then sees what the others applied, so every
// migration runs exactly once.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations.Load(migrations.Postgres)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := s.withTx(ctx, func(tx pgx.Tx) error { return applyMigration(ctx, tx, m) }); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, tx pgx.Tx, m migrations.Migration) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
		return fmt.Errorf("postgres: migration lock: %w", err)
	}
	// Created here, under the lock, rather than by a migration: it must exist
	// before the first migration can be recorded, and concurrent CREATE TABLE
	// IF NOT EXISTS without the lock can fail on the catalog's unique index.
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("postgres: create schema_migrations: %w", err)
	}
	var applied string
	err := tx.QueryRow(ctx, `SELECT name FROM schema_migrations WHERE version = $1`, m.Version).Scan(&applied)
	switch {
	case err == nil:
		if applied != m.Name {
			return fmt.Errorf("postgres: migration %d is recorded as %q but the binary has %q", m.Version, applied, m.Name)
		}
		return nil
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: read schema_migrations: %w", err)
	}
	// No arguments: pgx sends the file with the simple protocol, which
	// accepts several statements.
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return fmt.Errorf("postgres: migration %04d_%s: %w", m.Version, m.Name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
		return fmt.Errorf("postgres: record migration %d: %w", m.Version, err)
	}
	return nil
}

// SchemaVersion is the highest migration applied; 0 before the first Migrate.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var exists bool
	// to_regclass follows search_path, like the unqualified names elsewhere.
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	return v, nil
}
