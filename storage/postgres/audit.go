package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
)

// defaultAuditLimit bounds ListAudit when the filter sets no limit.
const defaultAuditLimit = 1000

// AppendAudit adds one line to the audit trail. The e-mail is stored
// normalised, the form ListAudit filters on.
func (s *Store) AppendAudit(ctx context.Context, e storage.AuditEvent) error {
	_, err := s.pool.Exec(ctx, insertAuditSQL, auditArgs(e)...)
	if err != nil {
		return dbError("append audit", err)
	}
	return nil
}

const insertAuditSQL = `INSERT INTO audit_events (time, type, user_id, email, client_ip, user_agent, detail)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`

// auditArgs are e's columns. Its texts are made valid UTF-8 here too,
// whatever the caller did: PostgreSQL refuses anything else, and an audit
// event often goes with the write it records (a session, a recovery job),
// which it must not fail. SQLite stores the bytes as given.
func auditArgs(e storage.AuditEvent) []any {
	valid := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
	return []any{e.Time, valid(e.Type), valid(e.UserID), valid(storage.NormaliseEmail(e.Email)), valid(e.ClientIP),
		valid(e.UserAgent), valid(e.Detail)}
}

// auditRows are the events' columns as seven arrays, the parameters of
// insertAuditRowsSQL: any number of events is one statement of one text.
func auditRows(audit []storage.AuditEvent) []any {
	cols := make([][]any, 7)
	for _, e := range audit {
		for i, v := range auditArgs(e) {
			cols[i] = append(cols[i], v)
		}
	}
	rows := make([]any, len(cols))
	for i, c := range cols {
		rows[i] = c
	}
	return rows
}

// insertAuditRowsSQL inserts the events of auditRows, passed as parameters
// first to first+6; the caller ends it with "ORDER BY a.n" (after any WHERE
// of its own), so that the events' ids follow their order.
func insertAuditRowsSQL(first int) string {
	return fmt.Sprintf(`INSERT INTO audit_events (time, type, user_id, email, client_ip, user_agent, detail)
		SELECT a.time, a.type, a.user_id, a.email, a.client_ip, a.user_agent, a.detail
		FROM unnest($%d::timestamptz[], $%d::text[], $%d::text[], $%d::text[], $%d::text[], $%d::text[], $%d::text[])
			WITH ORDINALITY AS a(time, type, user_id, email, client_ip, user_agent, detail, n)`,
		first, first+1, first+2, first+3, first+4, first+5, first+6)
}

// auditsAfter returns a common table expression that appends the audit
// events when the expression named after returned a row, and args extended
// with the events' rows.
func auditsAfter(after string, args []any, audit []storage.AuditEvent) (string, []any) {
	if len(audit) == 0 {
		return "", args
	}
	cte := `, audited AS (` + insertAuditRowsSQL(len(args)+1) + ` WHERE EXISTS (SELECT 1 FROM ` + after + `) ORDER BY a.n)`
	return cte, append(args, auditRows(audit)...)
}

// withAudit runs one statement and appends the audit events, in one round
// trip: a pgx batch of two statements at most, which PostgreSQL runs as one
// implicit transaction (all or nothing).
func (s *Store) withAudit(ctx context.Context, what string, audit []storage.AuditEvent, query string, args ...any) error {
	b := &pgx.Batch{}
	b.Queue(query, args...)
	if len(audit) > 0 {
		b.Queue(insertAuditRowsSQL(1)+` ORDER BY a.n`, auditRows(audit)...)
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return dbError(what, err)
	}
	return nil
}

// ListAudit lists audit events, newest first, narrowed by f.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	var (
		conds []string
		args  []any
	)
	if f.Email != "" {
		args = append(args, storage.NormaliseEmail(f.Email))
		conds = append(conds, fmt.Sprintf("email = $%d", len(args)))
	}
	if !f.Since.IsZero() {
		args = append(args, f.Since)
		conds = append(conds, fmt.Sprintf("time >= $%d", len(args)))
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	args = append(args, limit)
	query := `SELECT id, time, type, user_id, email, client_ip, user_agent, detail FROM audit_events`
	if len(conds) > 0 {
		query += ` WHERE ` + strings.Join(conds, " AND ")
	}
	query += fmt.Sprintf(` ORDER BY time DESC, id DESC LIMIT $%d`, len(args))
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, dbError("list audit", err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.AuditEvent, error) {
		var e storage.AuditEvent
		err := r.Scan(&e.ID, &e.Time, &e.Type, &e.UserID, &e.Email, &e.ClientIP, &e.UserAgent, &e.Detail)
		e.Time = utc(e.Time)
		return e, err
	})
	if err != nil {
		return nil, dbError("list audit", err)
	}
	return events, nil
}
