package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/caf-extranet/idp/storage"
)

const recoveryJobColumns = `id, email, client_ip, auth_request_id, requested_at`

// EnqueueRecoveryJob counts the hit and queues the job, unleased, with its
// receipt and audit events unless the count is over max, in one transaction.
func (s *Store) EnqueueRecoveryJob(ctx context.Context, key string, window time.Duration, max int64, j storage.RecoveryJob, audit ...storage.AuditEvent) (int64, error) {
	if j.ID == "" {
		j.ID = newID()
	}
	return s.countedWrite(ctx, key, window, max, j.RequestedAt, func(q querier) error {
		if err := exec(ctx, q, "enqueue recovery job", `INSERT INTO recovery_jobs (`+recoveryJobColumns+`)
			VALUES (?, ?, ?, ?, ?)`, j.ID, storage.NormaliseEmail(j.Email), j.ClientIP, j.AuthRequestID, ms(j.RequestedAt)); err != nil {
			return err
		}
		if r := j.Receipt; r.ID != "" {
			// An id already there keeps the later expiry.
			if err := exec(ctx, q, "add challenge receipt", `INSERT INTO challenge_receipts (id, expires_at) VALUES (?, ?)
				ON CONFLICT (id) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)`, r.ID, ms(r.ExpiresAt)); err != nil {
				return err
			}
		}
		return insertAudits(ctx, q, audit)
	})
}

// ClaimRecoveryJobs leases up to limit free jobs (never leased, or whose
// lease ran out), oldest first, until now+lease. It is one UPDATE statement,
// which SQLite runs under the write lock: concurrent claimers, in this
// process or another, never get the same job while its lease runs.
func (s *Store) ClaimRecoveryJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.RecoveryJob, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.w.QueryContext(ctx, `UPDATE recovery_jobs SET claimed_until = ?1
		WHERE id IN (SELECT id FROM recovery_jobs WHERE claimed_until <= ?2
			ORDER BY requested_at LIMIT ?3)
		RETURNING `+recoveryJobColumns,
		ms(now.Add(lease)), ms(now), limit)
	if err != nil {
		return nil, dbError("claim recovery jobs", err)
	}
	jobs, err := collect(rows, func(r rowScanner) (storage.RecoveryJob, error) {
		var j storage.RecoveryJob
		err := r.Scan(&j.ID, &j.Email, &j.ClientIP, &j.AuthRequestID, (*msTime)(&j.RequestedAt))
		return j, err
	})
	if err != nil {
		return nil, dbError("claim recovery jobs", err)
	}
	// RETURNING does not promise an order; hand the oldest out first.
	slices.SortFunc(jobs, func(a, b storage.RecoveryJob) int {
		if c := a.RequestedAt.Compare(b.RequestedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return jobs, nil
}

// DeleteRecoveryJobs removes processed jobs with their audit events; the ids
// go as one JSON array, so that every batch size is the same statement.
func (s *Store) DeleteRecoveryJobs(ctx context.Context, ids []string, audit ...storage.AuditEvent) error {
	list, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	return s.withAudit(ctx, audit, func(q querier) error {
		return exec(ctx, q, "delete recovery jobs", `DELETE FROM recovery_jobs WHERE id IN (SELECT value FROM json_each(?))`, string(list))
	})
}

// IssueProvisionalPassword, in one transaction: creates the agent if
// NewUser is set, replaces the agent's provisional password, queues the
// mail, deletes the recovery job if set.
// The job is deleted first: when it is already gone, another worker (whose
// lease had not run out) completed it, and this issue gets ErrConflict and
// writes nothing, so the agent is not mailed a second password. The agent
// is read in the same transaction as the writes: SQLite's one writer
// orders this issue before or after a concurrent SetUserDisabled.
func (s *Store) IssueProvisionalPassword(ctx context.Context, p storage.ProvisionalIssue) error {
	return s.writeTx(ctx, func(tx *txConn) error {
		const what = "issue provisional password"
		if p.JobID != "" {
			res, err := tx.ExecContext(ctx, `DELETE FROM recovery_jobs WHERE id = ?`, p.JobID)
			if err := requireChange(what+": recovery job already completed", res, err); err != nil {
				return err
			}
		}
		if p.NewUser != nil {
			if err := insertUser(ctx, tx, *p.NewUser); err != nil {
				return err
			}
		}
		pw := p.Password
		var enabled int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ? AND email = ? AND NOT disabled`,
			pw.UserID, p.Mail.To).Scan(&enabled)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: %s: agent %s not enabled at %s: %w", what, pw.UserID, p.Mail.To, storage.ErrAccountChanged)
		}
		if err != nil {
			return dbError(what+": read agent", err)
		}
		if err := exec(ctx, tx, what, `INSERT INTO provisional_passwords
			(user_id, hash, created_at, expires_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (user_id) DO UPDATE SET
				hash = excluded.hash, created_at = excluded.created_at, expires_at = excluded.expires_at`,
			pw.UserID, pw.Hash, ms(pw.CreatedAt), ms(pw.ExpiresAt)); err != nil {
			return err
		}
		if err := endProvisionalMails(ctx, tx, pw.UserID, storage.ProvisionalMailSuperseded); err != nil {
			return err
		}
		m := p.Mail
		if m.ID == "" {
			m.ID = newID()
		}
		if err := insertMail(ctx, tx, m); err != nil {
			return err
		}
		return exec(ctx, tx, what, `UPDATE outbox SET provisional_for = ? WHERE id = ?`, pw.UserID, m.ID)
	})
}

// endProvisionalMails gives up the agent's pending mails that carry a
// provisional password (see storage.ProvisionalMailSuperseded).
func endProvisionalMails(ctx context.Context, q querier, userID, why string) error {
	return exec(ctx, q, "end provisional mails", `UPDATE outbox
		SET status = ?, last_error = ?, text_body = '', html_body = ''
		WHERE provisional_for = ? AND status = ?`, storage.MailFailed, why, userID, storage.MailPending)
}

// GetProvisionalPassword returns the agent's provisional password;
// ErrNotFound when none or expired.
func (s *Store) GetProvisionalPassword(ctx context.Context, userID string, now time.Time) (storage.ProvisionalPassword, error) {
	var p storage.ProvisionalPassword
	err := s.r.QueryRowContext(ctx, `SELECT user_id, hash, created_at, expires_at FROM provisional_passwords
		WHERE user_id = ? AND expires_at > ?`, userID, ms(now)).Scan(
		&p.UserID, &p.Hash, (*msTime)(&p.CreatedAt), (*msTime)(&p.ExpiresAt))
	if err != nil {
		return storage.ProvisionalPassword{}, dbError("get provisional password", err)
	}
	return p, nil
}

// DeleteProvisionalPassword removes the agent's provisional password, if it
// is still the one of hash.
func (s *Store) DeleteProvisionalPassword(ctx context.Context, userID, hash string) error {
	return s.writeTx(ctx, func(tx *txConn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM provisional_passwords WHERE user_id = ? AND hash = ?`, userID, hash)
		if err != nil {
			return dbError("delete provisional password", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // another one issued meanwhile keeps its mail
		}
		return endProvisionalMails(ctx, tx, userID, storage.ProvisionalMailCancelled)
	})
}

// errPrecondition: a PasswordChange must carry exactly one precondition.
var errPrecondition = errors.New("sqlite: change password: exactly one of ExpectProvisionalHash and ExpectPasswordHash must be set")

// ChangePassword sets the agent's personal password in one transaction (see
// storage.Store). The precondition is part of the conditional statements, so
// a concurrent change or a second use of the provisional password gets
// ErrConflict and the transaction changes nothing.
func (s *Store) ChangePassword(ctx context.Context, c storage.PasswordChange) error {
	if (c.ExpectProvisionalHash == "") == (c.ExpectPasswordHash == "") {
		return errPrecondition
	}
	return s.writeTx(ctx, func(tx *txConn) error {
		const what = "change password"
		if c.ExpectProvisionalHash != "" {
			// Consumed here: an expired provisional password no longer holds.
			res, err := tx.ExecContext(ctx, `DELETE FROM provisional_passwords
				WHERE user_id = ? AND hash = ? AND expires_at > ?`, c.UserID, c.ExpectProvisionalHash, ms(c.Now))
			if err := requireChange(what, res, err); err != nil {
				return err
			}
			if err := execOne(ctx, tx, what, `UPDATE users
				SET password_hash = ?, pending_password_change = 0, updated_at = ? WHERE id = ?`,
				c.NewHash, ms(c.Now), c.UserID); err != nil {
				return err
			}
		} else {
			res, err := tx.ExecContext(ctx, `UPDATE users
				SET password_hash = ?, pending_password_change = 0, updated_at = ?
				WHERE id = ? AND password_hash = ?`, c.NewHash, ms(c.Now), c.UserID, c.ExpectPasswordHash)
			if err := requireChange(what, res, err); err != nil {
				return err
			}
			if err := exec(ctx, tx, what, `DELETE FROM provisional_passwords WHERE user_id = ?`, c.UserID); err != nil {
				return err
			}
		}
		if err := endProvisionalMails(ctx, tx, c.UserID, storage.ProvisionalMailPersonal); err != nil {
			return err
		}
		if err := exec(ctx, tx, what+": delete sessions",
			`DELETE FROM sessions WHERE user_id = ? AND id <> ?`, c.UserID, c.KeepSessionID); err != nil {
			return err
		}
		if err := revokeUserTokens(ctx, tx, c.UserID); err != nil {
			return err
		}
		if c.Notification == nil {
			return nil
		}
		return insertMail(ctx, tx, *c.Notification)
	})
}

// requireChange turns "no row changed" by a conditional statement into
// ErrConflict: its precondition no longer holds.
func requireChange(what string, res sql.Result, err error) error {
	if err != nil {
		return dbError(what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbError(what, err)
	}
	if n == 0 {
		return conflict(what)
	}
	return nil
}
