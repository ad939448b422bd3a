package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/internal/sqlrow"
)

const mailColumns = `id, to_address, subject, text_body, html_body, status, attempts, next_attempt_at,
	last_error, created_at, sent_at`

func scanMail(row rowScanner) (storage.OutboxMail, error) {
	var m storage.OutboxMail
	err := row.Scan(&m.ID, &m.To, &m.Subject, &m.TextBody, &m.HTMLBody, &m.Status, &m.Attempts,
		&m.NextAttemptAt, &m.LastError, &m.CreatedAt, &m.SentAt)
	m.NextAttemptAt, m.CreatedAt, m.SentAt = utc(m.NextAttemptAt), utc(m.CreatedAt), utcPtr(m.SentAt)
	return m, err
}

func collectMails(rows pgx.Rows, what string) ([]storage.OutboxMail, error) {
	mails, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.OutboxMail, error) { return scanMail(r) })
	if err != nil {
		return nil, dbError(what, err)
	}
	return mails, nil
}

// insertMail queues m. A mail without an id gets a random one and one
// without a status is pending, so that callers building a notification
// inside a larger change need not care.
func insertMail(ctx context.Context, q querier, m storage.OutboxMail) error {
	if m.ID == "" {
		m.ID = storage.NewID()
	}
	if m.Status == "" {
		m.Status = storage.MailPending
	}
	_, err := q.Exec(ctx, `INSERT INTO outbox (`+mailColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		m.ID, m.To, m.Subject, m.TextBody, m.HTMLBody, m.Status, m.Attempts, m.NextAttemptAt,
		m.LastError, m.CreatedAt, m.SentAt)
	if err != nil {
		return dbError("enqueue mail", err)
	}
	return nil
}

// EnqueueMail queues a message.
func (s *Store) EnqueueMail(ctx context.Context, m storage.OutboxMail) error {
	return insertMail(ctx, s.pool, m)
}

// ClaimMails leases up to limit pending mails due at now, oldest due first,
// by pushing their next attempt to now+lease. FOR UPDATE SKIP LOCKED keeps
// concurrent claimers from taking the same mail.
func (s *Store) ClaimMails(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.OutboxMail, error) {
	return s.claimMails(ctx, "", now, lease, limit)
}

// ClaimMailsTo is ClaimMails for the mails to one address.
func (s *Store) ClaimMailsTo(ctx context.Context, to string, now time.Time, lease time.Duration, limit int) ([]storage.OutboxMail, error) {
	return s.claimMails(ctx, to, now, lease, limit)
}

// claimMails claims due mails, all of them or those to one address ("": all).
func (s *Store) claimMails(ctx context.Context, to string, now time.Time, lease time.Duration, limit int) ([]storage.OutboxMail, error) {
	rows, err := s.pool.Query(ctx, `WITH picked AS (
			SELECT id FROM outbox
			WHERE status = $4 AND next_attempt_at <= $1 AND ($5 = '' OR to_address = $5)
			ORDER BY next_attempt_at, id
			LIMIT $3
			FOR UPDATE SKIP LOCKED
		)
		UPDATE outbox o SET next_attempt_at = $1 + $2::bigint * interval '1 microsecond'
		FROM picked WHERE o.id = picked.id
		RETURNING `+sqlrow.Qualified("o.", mailColumns),
		now, micros(lease), limit, storage.MailPending, to)
	if err != nil {
		return nil, dbError("claim mails", err)
	}
	return collectMails(rows, "claim mails")
}

// MailPending tells whether the mail is still to be sent.
func (s *Store) MailPending(ctx context.Context, id string) (bool, error) {
	var status string
	if err := s.pool.QueryRow(ctx, `SELECT status FROM outbox WHERE id = $1`, id).Scan(&status); err != nil {
		return false, notFoundOr("mail pending", err)
	}
	return status == storage.MailPending, nil
}

// MarkMailSent records the delivery and clears the bodies, so that a
// provisional password does not linger in the database.
func (s *Store) MarkMailSent(ctx context.Context, id string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE outbox
		SET status = $2, sent_at = $3, text_body = '', html_body = '', last_error = ''
		WHERE id = $1`, id, storage.MailSent, now)
	return requireOne("mark mail sent", tag, err)
}

// MarkMailRetry counts an attempt and schedules the next one.
func (s *Store) MarkMailRetry(ctx context.Context, id string, next time.Time, lastError string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE outbox
		SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3
		WHERE id = $1 AND status = $4`, id, next, lastError, storage.MailPending)
	return s.markedPending(ctx, "mark mail retry", id, tag, err)
}

// markedPending checks an update of a pending mail: one given up meanwhile
// (storage.ProvisionalMailSuperseded) keeps its status and its reason;
// ErrNotFound when there is no such mail.
func (s *Store) markedPending(ctx context.Context, what, id string, tag pgconn.CommandTag, err error) error {
	if err != nil {
		return dbError(what, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	_, err = s.MailPending(ctx, id)
	return err
}

// MarkMailFailed counts the last attempt and gives up. The bodies are
// cleared as for a sent mail: a mail never delivered may still hold a
// provisional password.
func (s *Store) MarkMailFailed(ctx context.Context, id string, lastError string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE outbox
		SET attempts = attempts + 1, status = $2, last_error = $3, text_body = '', html_body = ''
		WHERE id = $1 AND status = $4`, id, storage.MailFailed, lastError, storage.MailPending)
	return s.markedPending(ctx, "mark mail failed", id, tag, err)
}

// defaultMailListLimit bounds ListMails when the caller gives no limit.
const defaultMailListLimit = 1000

// ListMails lists the outbox, newest first; status "" means any, limit <= 0
// means 1000.
func (s *Store) ListMails(ctx context.Context, status string, limit int) ([]storage.OutboxMail, error) {
	if limit <= 0 {
		limit = defaultMailListLimit
	}
	lim := limit
	var (
		rows pgx.Rows
		err  error
	)
	// Two statements rather than "$1 = '' OR status = $1", which would keep
	// the planner from using the status index.
	if status == "" {
		rows, err = s.pool.Query(ctx, `SELECT `+mailColumns+` FROM outbox
			ORDER BY created_at DESC, id DESC LIMIT $1`, lim)
	} else {
		rows, err = s.pool.Query(ctx, `SELECT `+mailColumns+` FROM outbox WHERE status = $1
			ORDER BY created_at DESC, id DESC LIMIT $2`, status, lim)
	}
	if err != nil {
		return nil, dbError("list mails", err)
	}
	return collectMails(rows, "list mails")
}
