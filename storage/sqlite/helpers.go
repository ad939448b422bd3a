package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/caf-extranet/idp/storage"
)

// querier is what *sql.DB and *sql.Tx have in common, for statements shared
// by standalone calls and larger transactions.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// rowScanner is what *sql.Row and *sql.Rows have in common.
type rowScanner interface {
	Scan(dest ...any) error
}

// keepError is returned by a transaction body whose work must be committed
// although the call fails: a replayed code or refresh token revokes its grant
// and the caller still gets ErrAlreadyUsed.
type keepError struct{ err error }

func (e *keepError) Error() string { return e.err.Error() }
func (e *keepError) Unwrap() error { return e.err }

// commitAndFail makes inTx commit the transaction, then return err.
func commitAndFail(err error) error { return &keepError{err: err} }

// inTx runs fn in a write transaction (BEGIN IMMEDIATE, see the DSN):
// committed when fn returns nil or a commitAndFail error, rolled back
// otherwise. fn must use tx only: the writer pool has a single connection,
// which tx holds.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.writeTx(ctx, func(tx *txConn) error { return fn(tx.Tx) })
}

// isUniqueViolation reports whether err is SQLite refusing a duplicate key
// (a UNIQUE index or a PRIMARY KEY). The driver turns on extended result
// codes, which tell these apart from the other constraint failures.
func isUniqueViolation(err error) bool {
	var e *sqlitedriver.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// isBusy reports whether err is SQLite's "database is locked" (any extended
// SQLITE_BUSY code).
func isBusy(err error) bool {
	var e *sqlitedriver.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// dbError wraps err with what was being done, turning a unique violation into
// storage.ErrDuplicate and a missing row into storage.ErrNotFound.
func dbError(what string, err error) error {
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("sqlite: %s: %w (%v)", what, storage.ErrDuplicate, err)
	case errors.Is(err, sql.ErrNoRows):
		return notFound(what)
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

func notFound(what string) error {
	return fmt.Errorf("sqlite: %s: %w", what, storage.ErrNotFound)
}

func conflict(what string) error {
	return fmt.Errorf("sqlite: %s: %w", what, storage.ErrConflict)
}

func alreadyUsed(what string) error {
	return fmt.Errorf("sqlite: %s: %w", what, storage.ErrAlreadyUsed)
}

// execOne runs a statement that must change exactly one row: none means the
// record does not exist (ErrNotFound).
func execOne(ctx context.Context, q querier, what, query string, args ...any) error {
	res, err := q.ExecContext(ctx, query, args...)
	if err != nil {
		return dbError(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(what, err)
	}
	if n == 0 {
		return notFound(what)
	}
	return nil
}

// exec runs a statement whose row count does not matter.
func exec(ctx context.Context, q querier, what, query string, args ...any) error {
	if _, err := q.ExecContext(ctx, query, args...); err != nil {
		return dbError(what, err)
	}
	return nil
}

// collect scans every row with scan, closing rows.
func collect[T any](rows *sql.Rows, scan func(rowScanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// newID returns a random identifier, for records the caller left without one.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// ms is how times are stored: INTEGER unix milliseconds. The zero time.Time
// round-trips exactly (to a large negative number and back).
func ms(t time.Time) int64 { return t.UnixMilli() }

// msPtr stores a nullable time: nil is NULL.
func msPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMilli()
}

// fromMs reads a stored time back, in UTC.
func fromMs(v int64) time.Time { return time.UnixMilli(v).UTC() }

// msTime scans an INTEGER milliseconds column into a time.Time:
// Scan((*msTime)(&record.CreatedAt)).
type msTime time.Time

func (t *msTime) Scan(src any) error {
	v, ok := src.(int64)
	if !ok {
		return fmt.Errorf("sqlite: time column holds %T, want INTEGER milliseconds", src)
	}
	*t = msTime(fromMs(v))
	return nil
}

// msTimePtr scans a nullable INTEGER milliseconds column: NULL is nil.
type msTimePtr struct{ p **time.Time }

func (t msTimePtr) Scan(src any) error {
	if src == nil {
		*t.p = nil
		return nil
	}
	var v time.Time
	if err := (*msTime)(&v).Scan(src); err != nil {
		return err
	}
	*t.p = &v
	return nil
}

// jsonList is how string lists are stored: a JSON array in TEXT. An empty
// list reads back as nil (the contract makes nil and empty equivalent).
type jsonList []string

// Value stores nil as "[]" so that the NOT NULL columns always hold an array.
func (l jsonList) Value() (driver.Value, error) {
	if len(l) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal([]string(l))
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func (l *jsonList) Scan(src any) error {
	var raw []byte
	switch v := src.(type) {
	case string:
		raw = []byte(v)
	case []byte:
		raw = v
	default:
		return fmt.Errorf("sqlite: list column holds %T, want JSON TEXT", src)
	}
	var out []string
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("sqlite: list column: %w", err)
	}
	if len(out) == 0 {
		out = nil
	}
	*l = out
	return nil
}

// boolInt is how booleans are stored: INTEGER 0/1 (STRICT tables take no
// other type).
func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
