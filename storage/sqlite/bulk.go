package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"strings"

	"github.com/caf-extranet/idp/storage"
)

var _ storage.BulkImporter = (*Store)(nil)

// importBatch is how many rows one multi-row INSERT carries: far below
// SQLite's limit of 32766 bound variables (9 per user, 7 per audit event),
// large enough that the statement overhead vanishes.
const importBatch = 500

// existingBatch is how many e-mails one ExistingEmails query checks.
const existingBatch = 500

// multiRowInsert is "INSERT INTO table (columns) VALUES (?, ...), (?, ...)"
// for rows rows of columns values each.
func multiRowInsert(table, columns string, perRow, rows int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", perRow), ", ") + ")"
	var b strings.Builder
	b.WriteString("INSERT INTO " + table + " (" + columns + ") VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	return b.String()
}

func userArgs(args []any, u storage.User) []any {
	return append(args, u.ID, storage.NormaliseEmail(u.Email), u.Name, u.Organisation, u.PasswordHash,
		boolInt(u.PendingPasswordChange), boolInt(u.Disabled), ms(u.CreatedAt), ms(u.UpdatedAt))
}

// ImportUsers stores every user in one write transaction, in multi-row
// INSERTs of importBatch rows through one prepared statement. The writer
// connection is held until the end: other processes' writes wait on
// busy_timeout meanwhile, which is why a very large file is best imported
// while the server is idle.
func (s *Store) ImportUsers(ctx context.Context, users iter.Seq2[storage.User, error]) (int, error) {
	restore, err := s.bulkPragmas(ctx)
	if err != nil {
		return 0, err
	}
	defer restore()
	n := 0
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		full, err := tx.PrepareContext(ctx, multiRowInsert("users", userColumns, 9, importBatch))
		if err != nil {
			return dbError("import users: prepare", err)
		}
		defer full.Close()
		args := make([]any, 0, 9*importBatch)
		flush := func() error {
			rows := len(args) / 9
			if rows == 0 {
				return nil
			}
			var err error
			if rows == importBatch {
				_, err = full.ExecContext(ctx, args...)
			} else {
				_, err = tx.ExecContext(ctx, multiRowInsert("users", userColumns, 9, rows), args...)
			}
			if err != nil {
				return dbError("import users", err)
			}
			n += rows
			args = args[:0]
			return nil
		}
		for u, err := range users {
			if err != nil {
				return err
			}
			args = userArgs(args, u)
			if len(args) == 9*importBatch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return flush()
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// importCacheKiB is the page cache of the writer connection during an
// import. The ids are random, so their index is written all over: with
// SQLite's default 2 MB cache, a million rows spend most of their time
// spilling and re-reading pages.
const importCacheKiB = 128 * 1024

// bulkPragmas enlarges the writer connection's page cache and keeps its
// statement journal (each multi-row INSERT has one) in memory, and returns
// what puts them back. The pool has this one connection, so every statement
// below runs on it.
func (s *Store) bulkPragmas(ctx context.Context) (restore func(), err error) {
	var cache int64
	var temp int64
	if err := s.w.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&cache); err != nil {
		return nil, fmt.Errorf("sqlite: import: %w", err)
	}
	if err := s.w.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&temp); err != nil {
		return nil, fmt.Errorf("sqlite: import: %w", err)
	}
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = %d`, -importCacheKiB)); err != nil {
		return nil, fmt.Errorf("sqlite: import: %w", err)
	}
	restore = func() {
		// Without the caller's context: it may be the one that ended.
		_, _ = s.w.ExecContext(context.Background(), fmt.Sprintf(`PRAGMA cache_size = %d`, cache))
		_, _ = s.w.ExecContext(context.Background(), fmt.Sprintf(`PRAGMA temp_store = %d`, temp))
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA temp_store = MEMORY`); err != nil {
		restore()
		return nil, fmt.Errorf("sqlite: import: %w", err)
	}
	return restore, nil
}

// ExistingEmails checks the e-mails existingBatch at a time against the
// unique index.
func (s *Store) ExistingEmails(ctx context.Context, emails []string) ([]string, error) {
	var found []string
	for start := 0; start < len(emails); start += existingBatch {
		chunk := emails[start:min(start+existingBatch, len(emails))]
		args := make([]any, len(chunk))
		for i, e := range chunk {
			args[i] = storage.NormaliseEmail(e)
		}
		query := `SELECT email FROM users WHERE email IN (` +
			strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ") + `)`
		rows, err := s.r.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, dbError("existing emails", err)
		}
		got, err := collect(rows, func(r rowScanner) (string, error) {
			var e string
			return e, r.Scan(&e)
		})
		if err != nil {
			return nil, dbError("existing emails", err)
		}
		found = append(found, got...)
	}
	return found, nil
}

// AppendAuditBatch appends events in one transaction of multi-row INSERTs.
func (s *Store) AppendAuditBatch(ctx context.Context, events []storage.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	restore, err := s.bulkPragmas(ctx)
	if err != nil {
		return err
	}
	defer restore()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(events); start += importBatch {
			chunk := events[start:min(start+importBatch, len(events))]
			args := make([]any, 0, 7*len(chunk))
			for _, e := range chunk {
				args = append(args, ms(e.Time), e.Type, e.UserID, storage.NormaliseEmail(e.Email),
					e.ClientIP, e.UserAgent, e.Detail)
			}
			if _, err := tx.ExecContext(ctx, multiRowInsert("audit_events", auditColumns, 7, len(chunk)), args...); err != nil {
				return fmt.Errorf("sqlite: append audit batch: %w", err)
			}
		}
		return nil
	})
}
