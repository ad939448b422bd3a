package postgres

import (
	"context"
	"fmt"
	"iter"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
)

var _ storage.BulkImporter = (*Store)(nil)

// existingBatch is how many e-mails one ExistingEmails query checks (one
// array parameter, so only the plan's cost limits it).
const existingBatch = 5000

var userCopyColumns = []string{"id", "email", "name", "organisation", "password_hash",
	"pending_password_change", "disabled", "created_at", "updated_at"}

var auditCopyColumns = []string{"time", "type", "user_id", "email", "client_ip", "user_agent", "detail"}

// ImportUsers streams the users into one COPY inside one transaction: a
// duplicate anywhere fails the COPY and nothing is kept.
func (s *Store) ImportUsers(ctx context.Context, users iter.Seq2[storage.User, error]) (int, error) {
	next, stop := iter.Pull2(users)
	defer stop()
	var (
		n      int64
		seqErr error // the sequence's own error: pgx reports it as a COPY failure
	)
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		src := pgx.CopyFromFunc(func() ([]any, error) {
			u, err, ok := next()
			if !ok {
				return nil, nil
			}
			if err != nil {
				seqErr = err
				return nil, err
			}
			return []any{u.ID, storage.NormaliseEmail(u.Email), u.Name, u.Organisation, u.PasswordHash,
				u.PendingPasswordChange, u.Disabled, u.CreatedAt, u.UpdatedAt}, nil
		})
		var err error
		n, err = tx.CopyFrom(ctx, pgx.Identifier{"users"}, userCopyColumns, src)
		if seqErr != nil {
			return seqErr
		}
		if err != nil {
			return dbError("import users", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	// The planner's statistics, at once: until autovacuum gets to it, a
	// table that has just grown by a million rows is planned with the
	// statistics of before, and a statement prepared meanwhile keeps that
	// plan. A failure keeps the import and leaves them to autovacuum.
	_, _ = s.pool.Exec(ctx, `ANALYZE users`)
	return int(n), nil
}

// ExistingEmails checks the e-mails existingBatch at a time against the
// unique index, one array parameter per query.
func (s *Store) ExistingEmails(ctx context.Context, emails []string) ([]string, error) {
	var found []string
	for start := 0; start < len(emails); start += existingBatch {
		chunk := emails[start:min(start+existingBatch, len(emails))]
		norm := make([]string, len(chunk))
		for i, e := range chunk {
			norm[i] = storage.NormaliseEmail(e)
		}
		rows, err := s.pool.Query(ctx, `SELECT email FROM users WHERE email = ANY($1)`, norm)
		if err != nil {
			return nil, dbError("existing emails", err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, dbError("existing emails", err)
		}
		found = append(found, got...)
	}
	return found, nil
}

// AppendAuditBatch copies the events in one COPY (itself one transaction).
func (s *Store) AppendAuditBatch(ctx context.Context, events []storage.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == len(events) {
			return nil, nil
		}
		e := events[i]
		i++
		return []any{e.Time, e.Type, e.UserID, storage.NormaliseEmail(e.Email), e.ClientIP, e.UserAgent, e.Detail}, nil
	})
	if _, err := s.pool.CopyFrom(ctx, pgx.Identifier{"audit_events"}, auditCopyColumns, src); err != nil {
		return fmt.Errorf("postgres: append audit batch: %w", err)
	}
	return nil
}
