package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
)

// EnqueueRecoveryJob counts the hit and, unless the count is over max,
// queues the job with its receipt and audit events, in one statement: the
// job's insert reads the count, the receipt's and the events' the job's.
func (s *Store) EnqueueRecoveryJob(ctx context.Context, key string, window time.Duration, max int64, j storage.RecoveryJob, audit ...storage.AuditEvent) (int64, error) {
	args := []any{key, j.RequestedAt, j.RequestedAt.Add(window), max,
		j.ID, storage.NormaliseEmail(j.Email), j.ClientIP, j.AuthRequestID, j.RequestedAt,
		j.Receipt.ID, j.Receipt.ExpiresAt}
	auditCTE, args := auditsAfter("job", args, audit)
	var n int64
	// An id already there keeps the later expiry.
	err := s.pool.QueryRow(ctx, hitCounter+`, job AS (
			INSERT INTO recovery_jobs (id, email, client_ip, auth_request_id, requested_at)
			SELECT $5::text, $6::text, $7::text, $8::text, $9::timestamptz
			FROM hit WHERE hit.count <= $4
			RETURNING id
		), receipt AS (
			INSERT INTO challenge_receipts (id, expires_at)
			SELECT $10::text, $11::timestamptz FROM job WHERE $10::text <> ''
			ON CONFLICT (id) DO UPDATE SET expires_at = GREATEST(challenge_receipts.expires_at, EXCLUDED.expires_at)
		)`+auditCTE+`
		SELECT count FROM hit`, args...).Scan(&n)
	if err != nil {
		return 0, dbError("enqueue recovery job", err)
	}
	return n, nil
}

// ClaimRecoveryJobs leases up to limit free jobs, oldest first, until
// now+lease. FOR UPDATE SKIP LOCKED lets concurrent claimers pass over the
// rows another one is taking; a row leased meanwhile fails the WHERE when
// re-checked after the lock, so no job is handed out twice.
func (s *Store) ClaimRecoveryJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.RecoveryJob, error) {
	rows, err := s.pool.Query(ctx, `WITH picked AS (
			SELECT id FROM recovery_jobs
			WHERE claimed_until IS NULL OR claimed_until <= $1
			ORDER BY requested_at, id
			LIMIT $3
			FOR UPDATE SKIP LOCKED
		)
		UPDATE recovery_jobs j SET claimed_until = $1 + $2::bigint * interval '1 microsecond'
		FROM picked WHERE j.id = picked.id
		RETURNING j.id, j.email, j.client_ip, j.auth_request_id, j.requested_at`,
		now, micros(lease), limit)
	if err != nil {
		return nil, dbError("claim recovery jobs", err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.RecoveryJob, error) {
		var j storage.RecoveryJob
		err := r.Scan(&j.ID, &j.Email, &j.ClientIP, &j.AuthRequestID, &j.RequestedAt)
		j.RequestedAt = utc(j.RequestedAt)
		return j, err
	})
	if err != nil {
		return nil, dbError("claim recovery jobs", err)
	}
	// RETURNING does not keep the CTE's order.
	sort.Slice(jobs, func(a, b int) bool {
		if !jobs[a].RequestedAt.Equal(jobs[b].RequestedAt) {
			return jobs[a].RequestedAt.Before(jobs[b].RequestedAt)
		}
		return jobs[a].ID < jobs[b].ID
	})
	return jobs, nil
}

// DeleteRecoveryJobs removes processed jobs with their audit events; jobs
// already gone are not an error.
func (s *Store) DeleteRecoveryJobs(ctx context.Context, ids []string, audit ...storage.AuditEvent) error {
	return s.withAudit(ctx, "delete recovery jobs", audit, `DELETE FROM recovery_jobs WHERE id = ANY($1)`, ids)
}

// IssueProvisionalPassword, in one transaction: creates the agent if
// NewUser is set, replaces the agent's provisional password, queues the
// mail, deletes the recovery job if set.
// The job is deleted first: when it is already gone, another worker (whose
// lease had not run out) completed it, and this issue gets ErrConflict and
// writes nothing, so the agent is not mailed a second password. Two workers
// deleting the job at once queue on its row; the second then finds it gone.
func (s *Store) IssueProvisionalPassword(ctx context.Context, p storage.ProvisionalIssue) error {
	return s.withTx(ctx, func(tx pgx.Tx) error {
		if p.JobID != "" {
			tag, err := tx.Exec(ctx, `DELETE FROM recovery_jobs WHERE id = $1`, p.JobID)
			if err != nil {
				return dbError("issue provisional password: delete job", err)
			}
			if tag.RowsAffected() == 0 {
				return conflict("issue provisional password: recovery job already completed")
			}
		}
		if p.NewUser != nil {
			if err := insertUser(ctx, tx, *p.NewUser); err != nil {
				return err
			}
		}
		pp := p.Password
		// FOR SHARE: a concurrent SetUserDisabled waits for this issue,
		// or this read waits for it and sees the agent disabled.
		var enabled int
		err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 AND email = $2 AND NOT disabled FOR SHARE`,
			pp.UserID, p.Mail.To).Scan(&enabled)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: issue provisional password: agent %s not enabled at %s: %w", pp.UserID, p.Mail.To, storage.ErrAccountChanged)
		}
		if err != nil {
			return dbError("issue provisional password: read agent", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO provisional_passwords (user_id, hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (user_id) DO UPDATE
			SET hash = excluded.hash, created_at = excluded.created_at, expires_at = excluded.expires_at`,
			pp.UserID, pp.Hash, pp.CreatedAt, pp.ExpiresAt)
		if err != nil {
			return dbError("issue provisional password", err)
		}
		if err := endProvisionalMails(ctx, tx, pp.UserID, storage.ProvisionalMailSuperseded); err != nil {
			return err
		}
		m := p.Mail
		if m.ID == "" {
			m.ID = storage.NewID()
		}
		if err := insertMail(ctx, tx, m); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE outbox SET provisional_for = $1 WHERE id = $2`, pp.UserID, m.ID); err != nil {
			return dbError("issue provisional password: mark its mail", err)
		}
		return nil
	})
}

// endProvisionalMails gives up the agent's pending mails that carry a
// provisional password (see storage.ProvisionalMailSuperseded).
func endProvisionalMails(ctx context.Context, tx pgx.Tx, userID, why string) error {
	_, err := tx.Exec(ctx, `UPDATE outbox SET status = $1, last_error = $2, text_body = '', html_body = ''
		WHERE provisional_for = $3 AND status = $4`, storage.MailFailed, why, userID, storage.MailPending)
	if err != nil {
		return dbError("end provisional mails", err)
	}
	return nil
}

// GetProvisionalPassword returns ErrNotFound when there is none or it has
// expired.
func (s *Store) GetProvisionalPassword(ctx context.Context, userID string, now time.Time) (storage.ProvisionalPassword, error) {
	var p storage.ProvisionalPassword
	err := s.pool.QueryRow(ctx, `SELECT user_id, hash, created_at, expires_at FROM provisional_passwords
		WHERE user_id = $1 AND expires_at > $2`, userID, now).Scan(&p.UserID, &p.Hash, &p.CreatedAt, &p.ExpiresAt)
	if err != nil {
		return storage.ProvisionalPassword{}, notFoundOr("get provisional password", err)
	}
	p.CreatedAt, p.ExpiresAt = utc(p.CreatedAt), utc(p.ExpiresAt)
	return p, nil
}

// DeleteProvisionalPassword removes the agent's provisional password, if it
// is still the one of hash.
func (s *Store) DeleteProvisionalPassword(ctx context.Context, userID, hash string) error {
	return s.withTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM provisional_passwords WHERE user_id = $1 AND hash = $2`, userID, hash)
		if err != nil {
			return dbError("delete provisional password", err)
		}
		if tag.RowsAffected() == 0 {
			return nil // another one issued meanwhile keeps its mail
		}
		return endProvisionalMails(ctx, tx, userID, storage.ProvisionalMailCancelled)
	})
}

// errBadPasswordChange: the caller must set exactly one precondition.
var errBadPasswordChange = errors.New("postgres: change password: exactly one of ExpectProvisionalHash and ExpectPasswordHash must be set")

// ChangePassword sets the agent's personal password in one transaction. The
// user row is locked first, so concurrent changes are serialised and each
// checks its precondition against the outcome of the previous one: two
// changes consuming the same provisional password cannot both win.
func (s *Store) ChangePassword(ctx context.Context, c storage.PasswordChange) error {
	if (c.ExpectProvisionalHash == "") == (c.ExpectPasswordHash == "") {
		return errBadPasswordChange
	}
	const what = "change password"
	return s.withTx(ctx, func(tx pgx.Tx) error {
		var current string
		err := tx.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1 FOR UPDATE`, c.UserID).Scan(&current)
		if err != nil {
			return notFoundOr(what, err)
		}
		if c.ExpectPasswordHash != "" && current != c.ExpectPasswordHash {
			return conflict(what + ": password changed meanwhile")
		}
		if c.ExpectProvisionalHash != "" {
			// Consumed here: it must still be the one the agent typed, and
			// unexpired.
			tag, err := tx.Exec(ctx, `DELETE FROM provisional_passwords
				WHERE user_id = $1 AND hash = $2 AND expires_at > $3`, c.UserID, c.ExpectProvisionalHash, c.Now)
			if err != nil {
				return dbError(what, err)
			}
			if tag.RowsAffected() == 0 {
				return conflict(what + ": provisional password no longer valid")
			}
		} else if _, err := tx.Exec(ctx, `DELETE FROM provisional_passwords WHERE user_id = $1`, c.UserID); err != nil {
			// A personal password supersedes any pending provisional one.
			return dbError(what, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE users
			SET password_hash = $2, pending_password_change = false, updated_at = $3 WHERE id = $1`,
			c.UserID, c.NewHash, c.Now); err != nil {
			return dbError(what, err)
		}
		if err := endProvisionalMails(ctx, tx, c.UserID, storage.ProvisionalMailPersonal); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1 AND id <> $2`,
			c.UserID, c.KeepSessionID); err != nil {
			return dbError(what+": delete sessions", err)
		}
		if err := revokeUserTokens(ctx, tx, c.UserID); err != nil {
			return err
		}
		if c.Notification == nil {
			return nil
		}
		if err := insertMail(ctx, tx, *c.Notification); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}
