package sqlite

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/caf-extranet/idp/storage"
)

const mailColumns = `id, to_address, subject, text_body, html_body, status, attempts, next_attempt_at,
	last_error, created_at, sent_at`

// defaultMailListLimit bounds ListMails when the caller gives no limit.
const defaultMailListLimit = 1000

func scanMail(row rowScanner) (storage.OutboxMail, error) {
	var m storage.OutboxMail
	err := row.Scan(&m.ID, &m.To, &m.Subject, &m.TextBody, &m.HTMLBody, &m.Status, &m.Attempts,
		(*msTime)(&m.NextAttemptAt), &m.LastError, (*msTime)(&m.CreatedAt), msTimePtr{&m.SentAt})
	return m, err
}

// insertMail queues m: a missing id is generated, a missing status is
// pending.
func insertMail(ctx context.Context, q querier, m storage.OutboxMail) error {
	if m.ID == "" {
		m.ID = newID()
	}
	if m.Status == "" {
		m.Status = storage.MailPending
	}
	return exec(ctx, q, "enqueue mail", `INSERT INTO outbox (`+mailColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ID, m.To, m.Subject, m.TextBody, m.HTMLBody, m.Status, m.Attempts, ms(m.NextAttemptAt),
		m.LastError, ms(m.CreatedAt), msPtr(m.SentAt))
}

// EnqueueMail queues a mail.
func (s *Store) EnqueueMail(ctx context.Context, m storage.OutboxMail) error {
	return insertMail(ctx, s.w, m)
}

// ClaimMails leases up to limit pending mails due at now by pushing their
// NextAttemptAt to now+lease. It is one UPDATE statement, run under SQLite's
// write lock: concurrent claimers never get the same mail.
func (s *Store) ClaimMails(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.OutboxMail, error) {
	return s.claimMails(ctx, "", now, lease, limit)
}

// ClaimMailsTo is ClaimMails for the mails to one address.
func (s *Store) ClaimMailsTo(ctx context.Context, to string, now time.Time, lease time.Duration, limit int) ([]storage.OutboxMail, error) {
	return s.claimMails(ctx, to, now, lease, limit)
}

// claimMails claims due mails, all of them or those to one address ("": all).
func (s *Store) claimMails(ctx context.Context, to string, now time.Time, lease time.Duration, limit int) ([]storage.OutboxMail, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.w.QueryContext(ctx, `UPDATE outbox SET next_attempt_at = ?1
		WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?2
			AND (?4 = '' OR to_address = ?4)
			ORDER BY next_attempt_at LIMIT ?3)
		RETURNING `+mailColumns,
		ms(now.Add(lease)), ms(now), limit, to)
	if err != nil {
		return nil, dbError("claim mails", err)
	}
	mails, err := collect(rows, scanMail)
	if err != nil {
		return nil, dbError("claim mails", err)
	}
	// RETURNING does not promise an order; hand the oldest out first.
	slices.SortFunc(mails, func(a, b storage.OutboxMail) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return mails, nil
}

// MailPending tells whether the mail is still to be sent.
func (s *Store) MailPending(ctx context.Context, id string) (bool, error) {
	var status string
	if err := s.r.QueryRowContext(ctx, `SELECT status FROM outbox WHERE id = ?`, id).Scan(&status); err != nil {
		return false, dbError("mail pending", err)
	}
	return status == storage.MailPending, nil
}

// MarkMailSent sets status sent and SentAt, and clears the bodies so that a
// provisional password does not linger in the database.
func (s *Store) MarkMailSent(ctx context.Context, id string, now time.Time) error {
	return execOne(ctx, s.w, "mark mail sent", `UPDATE outbox
		SET status = 'sent', sent_at = ?, text_body = '', html_body = '', last_error = '' WHERE id = ?`, ms(now), id)
}

// MarkMailRetry counts an attempt and schedules the next one.
func (s *Store) MarkMailRetry(ctx context.Context, id string, next time.Time, lastError string) error {
	return s.markPending(ctx, "mark mail retry", id, `UPDATE outbox
		SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? WHERE id = ? AND status = ?`,
		ms(next), lastError, id, storage.MailPending)
}

// markPending runs an update of a pending mail: one given up meanwhile
// (storage.ProvisionalMailSuperseded) keeps its status and its reason;
// ErrNotFound when there is no such mail.
func (s *Store) markPending(ctx context.Context, what, id, query string, args ...any) error {
	res, err := s.w.ExecContext(ctx, query, args...)
	if err != nil {
		return dbError(what, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	if _, err := s.MailPending(ctx, id); err != nil {
		return err
	}
	return nil
}

// MarkMailFailed counts the last attempt and gives up. The bodies are
// cleared as for a sent mail: a mail never delivered may still hold a
// provisional password.
func (s *Store) MarkMailFailed(ctx context.Context, id string, lastError string) error {
	return s.markPending(ctx, "mark mail failed", id, `UPDATE outbox
		SET status = 'failed', attempts = attempts + 1, last_error = ?, text_body = '', html_body = ''
		WHERE id = ? AND status = ?`, lastError, id, storage.MailPending)
}

// ListMails lists the outbox, newest first; status "" means any, limit 0 the
// default (1000).
func (s *Store) ListMails(ctx context.Context, status string, limit int) ([]storage.OutboxMail, error) {
	if limit <= 0 {
		limit = defaultMailListLimit
	}
	// Two statements rather than "? = '' OR status = ?", which no index serves.
	query, args := `SELECT `+mailColumns+` FROM outbox
		ORDER BY created_at DESC, rowid DESC LIMIT ?`, []any{limit}
	if status != "" {
		query, args = `SELECT `+mailColumns+` FROM outbox WHERE status = ?
			ORDER BY created_at DESC, rowid DESC LIMIT ?`, []any{status, limit}
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbError("list mails", err)
	}
	mails, err := collect(rows, scanMail)
	if err != nil {
		return nil, dbError("list mails", err)
	}
	return mails, nil
}
