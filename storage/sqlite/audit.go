package sqlite

import (
	"context"

	"github.com/caf-extranet/idp/storage"
)

// defaultAuditLimit is ListAudit's limit when the filter sets none.
const defaultAuditLimit = 1000

const auditColumns = `time, type, user_id, email, client_ip, user_agent, detail`

// AppendAudit adds one line to the audit trail; the store assigns its ID.
func (s *Store) AppendAudit(ctx context.Context, e storage.AuditEvent) error {
	return s.write(ctx, func(q querier) error { return insertAudit(ctx, q, e) })
}

func insertAudit(ctx context.Context, q querier, e storage.AuditEvent) error {
	return exec(ctx, q, "append audit", `INSERT INTO audit_events (`+auditColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		ms(e.Time), e.Type, e.UserID, storage.NormaliseEmail(e.Email), e.ClientIP, e.UserAgent, e.Detail)
}

// withAudit runs write and appends the audit events in one transaction; a
// single statement when there are none.
func (s *Store) withAudit(ctx context.Context, audit []storage.AuditEvent, write func(q querier) error) error {
	return s.writeTx(ctx, func(tx *txConn) error {
		if err := write(tx); err != nil {
			return err
		}
		return insertAudits(ctx, tx, audit)
	})
}

func insertAudits(ctx context.Context, q querier, audit []storage.AuditEvent) error {
	for _, e := range audit {
		if err := insertAudit(ctx, q, e); err != nil {
			return err
		}
	}
	return nil
}

// ListAudit lists audit events, newest first. E-mails are stored and matched
// normalised, so a search finds an agent whatever the case typed. Each filter
// combination is served by an index: (email, time) or (time), both of which
// end with the rowid, so "ORDER BY time DESC, id DESC LIMIT n" reads n index
// entries even among millions of rows.
func (s *Store) ListAudit(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	query := `SELECT id, ` + auditColumns + ` FROM audit_events WHERE 1 = 1`
	var args []any
	if f.Email != "" {
		query += ` AND email = ?`
		args = append(args, storage.NormaliseEmail(f.Email))
	}
	if !f.Since.IsZero() {
		query += ` AND time >= ?`
		args = append(args, ms(f.Since))
	}
	query += ` ORDER BY time DESC, id DESC LIMIT ?`
	args = append(args, limit)

	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbError("list audit", err)
	}
	events, err := collect(rows, func(r rowScanner) (storage.AuditEvent, error) {
		var e storage.AuditEvent
		err := r.Scan(&e.ID, (*msTime)(&e.Time), &e.Type, &e.UserID, &e.Email, &e.ClientIP, &e.UserAgent, &e.Detail)
		return e, err
	})
	if err != nil {
		return nil, dbError("list audit", err)
	}
	return events, nil
}
