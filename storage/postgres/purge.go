package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
)

// codeReplayWindow is how long a used or expired authorization code is kept
// after its expiry, so that a replay is still recognised (and its grant
// revoked) rather than reported as unknown.
const codeReplayWindow = time.Hour

// PurgeExpired deletes what has expired (see storage.Store) and returns how
// many rows went. One transaction: a purge interrupted half-way leaves
// nothing half-deleted to reason about.
func (s *Store) PurgeExpired(ctx context.Context, now, mailBefore, auditBefore time.Time) (int64, error) {
	type purge struct {
		what string
		sql  string
		args []any
	}
	purges := []purge{
		// A request outlives its expiry while a code issued from it is still
		// valid (see storage.Store.PurgeExpired); auth_codes_auth_request_id_idx
		// serves the look-up.
		{"auth requests", `DELETE FROM auth_requests r WHERE r.expires_at <= $1 AND NOT EXISTS (
			SELECT 1 FROM auth_codes c WHERE c.auth_request_id = r.id AND c.expires_at > $1)`, []any{now}},
		{"auth codes", `DELETE FROM auth_codes WHERE expires_at <= $1`, []any{now.Add(-codeReplayWindow)}},
		{"sessions", `DELETE FROM sessions WHERE LEAST(idle_expires_at, absolute_expires_at) <= $1`, []any{now}},
		{"challenges", `DELETE FROM challenges WHERE expires_at <= $1`, []any{now}},
		{"challenge receipts", `DELETE FROM challenge_receipts WHERE expires_at <= $1`, []any{now}},
		{"provisional passwords", `DELETE FROM provisional_passwords WHERE expires_at <= $1`, []any{now}},
		{"access tokens", `DELETE FROM access_tokens WHERE expires_at <= $1 OR revoked`, []any{now}},
		{"refresh tokens", `DELETE FROM refresh_tokens WHERE expires_at <= $1 OR revoked`, []any{now}},
		// Unobservable otherwise: a counter whose window is over counts from
		// 1 again at the next hit, present or not.
		{"rate-limit counters", `DELETE FROM counters WHERE window_end <= $1`, []any{now}},
		// Locks stay until a completed recovery resets them.
		{"throttles", `DELETE FROM throttles WHERE last_failure_at < $1 AND locked_at IS NULL`,
			[]any{now.Add(-storage.ThrottleForgetAfter)}},
		{"reservations", `DELETE FROM attempts_in_flight WHERE reserved_at < $1`,
			[]any{now.Add(-storage.ReservationForgetAfter)}},
		{"sent mails", `DELETE FROM outbox WHERE status = 'sent' AND sent_at < $1`, []any{mailBefore}},
	}
	if !auditBefore.IsZero() {
		purges = append(purges, purge{"audit events", `DELETE FROM audit_events WHERE time < $1`, []any{auditBefore}})
	}
	var total int64
	err := s.withTx(ctx, func(tx pgx.Tx) error {
		for _, p := range purges {
			tag, err := tx.Exec(ctx, p.sql, p.args...)
			if err != nil {
				return dbError("purge "+p.what, err)
			}
			total += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return total, nil
}
