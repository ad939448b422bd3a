package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/caf-extranet/idp/migrations"
)

// nowMsSQL is the database clock in unix milliseconds. Migrate has no clock
// parameter, and applied_at is only informational.
const nowMsSQL = `CAST(unixepoch('subsec') * 1000 AS INTEGER)`

// Migrate applies the pending migrations, each in its own transaction, and
// records each in schema_migrations. Each transaction begins IMMEDIATE, so a
// second process migrating the same file at the same time waits for the
// first, then re-reads what is applied and skips it: every migration runs
// exactly once.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations.Load(migrations.SQLite)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := s.inTx(ctx, func(tx *sql.Tx) error { return applyMigration(ctx, tx, m) }); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, tx *sql.Tx, m migrations.Migration) error {
	// Created here, inside the write transaction, rather than by a migration:
	// it must exist before the first migration can be recorded.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("sqlite: create schema_migrations: %w", err)
	}
	var applied string
	err := tx.QueryRowContext(ctx, `SELECT name FROM schema_migrations WHERE version = ?`, m.Version).Scan(&applied)
	switch {
	case err == nil:
		if applied != m.Name {
			return fmt.Errorf("sqlite: migration %d is recorded as %q but the binary has %q", m.Version, applied, m.Name)
		}
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlite: read schema_migrations: %w", err)
	}
	// The driver runs every statement of a multi-statement text.
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("sqlite: migration %04d_%s: %w", m.Version, m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at)
		VALUES (?, ?, `+nowMsSQL+`)`, m.Version, m.Name); err != nil {
		return fmt.Errorf("sqlite: record migration %d: %w", m.Version, err)
	}
	return nil
}

// SchemaVersion is the highest migration applied; 0 before the first Migrate.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var exists bool
	if err := s.r.QueryRowContext(ctx,
		`SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations')`,
	).Scan(&exists); err != nil {
		return 0, fmt.Errorf("sqlite: schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: schema version: %w", err)
	}
	return v, nil
}
