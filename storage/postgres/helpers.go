package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/caf-extranet/idp/storage"
)

// uniqueViolation is the SQLSTATE of a unique index conflict.
const uniqueViolation = "23505"

// invalidByteSequence is SQLSTATE 22021: a text not UTF-8, or with a NUL.
const invalidByteSequence = "22021"

// rowScanner is what pgx.Row and pgx.Rows have in common.
type rowScanner interface {
	Scan(dest ...any) error
}

// committedError is returned by a transaction body whose work must be kept
// although the call fails: a replayed code or refresh token revokes its grant
// and the caller still gets ErrAlreadyUsed.
type committedError struct{ err error }

func (e *committedError) Error() string { return e.err.Error() }
func (e *committedError) Unwrap() error { return e.err }

// commitThenFail makes withTx commit the transaction and return err.
func commitThenFail(err error) error { return &committedError{err: err} }

// withTx runs fn in a transaction: committed when fn returns nil or a
// commitThenFail error, rolled back otherwise.
func (s *Store) withTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	// A no-op once committed.
	defer func() { _ = tx.Rollback(ctx) }()
	err = fn(tx)
	var kept *committedError
	if err != nil && !errors.As(err, &kept) {
		return err
	}
	if cerr := tx.Commit(ctx); cerr != nil {
		return fmt.Errorf("postgres: commit: %w", cerr)
	}
	if kept != nil {
		return kept.err
	}
	return nil
}

// dbError wraps err with what was being done, and turns a unique violation
// into storage.ErrDuplicate.
func dbError(what string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation {
		return fmt.Errorf("postgres: %s: %w (%s)", what, storage.ErrDuplicate, pgErr.ConstraintName)
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// notFoundOr maps pgx.ErrNoRows to storage.ErrNotFound, and so a key
// PostgreSQL cannot even hold (not UTF-8, or with a NUL), which names no
// record: such keys come from outside (a random bearer token that the
// library's fallback decryption reads as an id, a client_id), and SQLite
// answers them as unknown.
func notFoundOr(what string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) || unstorable(err) {
		return fmt.Errorf("postgres: %s: %w", what, storage.ErrNotFound)
	}
	return dbError(what, err)
}

// unstorable reports PostgreSQL's refusal of a text that is not UTF-8 or
// holds a NUL (SQLSTATE 22021, invalid byte sequence).
func unstorable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == invalidByteSequence
}

// notFound reports a missing record.
func notFound(what string) error {
	return fmt.Errorf("postgres: %s: %w", what, storage.ErrNotFound)
}

// requireOne turns "no row affected" into ErrNotFound.
func requireOne(what string, tag pgconn.CommandTag, err error) error {
	if err != nil {
		return dbError(what, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(what)
	}
	return nil
}

// list makes a slice storable in a NOT NULL text[] column: pgx would send a
// nil slice as NULL.
func list(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// utc returns t in UTC: pgx scans timestamptz in the local zone.
func utc(t time.Time) time.Time { return t.UTC() }

// utcPtr is utc for nullable columns.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// micros is a duration as a whole number of microseconds, PostgreSQL's
// interval precision (multiplied by interval '1 microsecond' in SQL).
func micros(d time.Duration) int64 { return d.Microseconds() }

// conflict reports a lost compare-and-swap.
func conflict(what string) error {
	return fmt.Errorf("postgres: %s: %w", what, storage.ErrConflict)
}

// errAlreadyUsed reports a replayed single-use record.
func errAlreadyUsed(what string) error {
	return fmt.Errorf("postgres: %s: %w", what, storage.ErrAlreadyUsed)
}

// querier is what a pool and a transaction have in common, for statements
// shared by standalone calls and larger transactions.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
