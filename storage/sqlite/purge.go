package sqlite

import (
	"context"
	"slices"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// codeReuseWindow is how long a code outlives its expiry: a replay within it
// is still recognised and revokes the grant.
const codeReuseWindow = time.Hour

// purgeBatch bounds each DELETE of a large table, so that the write lock is
// released between batches and logins do not wait behind a long purge.
const purgeBatch = 2000

// PurgeExpired deletes expired auth requests (once every code issued from
// them has expired too), codes (expired more than an hour ago), sessions,
// challenges and their receipts, provisional passwords, tokens expired or revoked, counters
// whose window has ended, unlocked throttles idle for
// storage.ThrottleForgetAfter, reservations older than
// storage.ReservationForgetAfter, sent mails older than mailBefore and audit
// events older than auditBefore (a zero time keeps them). Returns how many
// rows went.
//
// The statements are independent: nothing here needs them to be atomic
// together, and each batch commits on its own.
func (s *Store) PurgeExpired(ctx context.Context, now, mailBefore, auditBefore time.Time) (int64, error) {
	type purge struct {
		what  string
		table string
		where string // rows to delete; must be served by an index
		args  []any
	}
	purges := []purge{
		// A request outlives its expiry while a code issued from it is still
		// valid (see storage.Store.PurgeExpired); auth_codes_auth_request_id_idx
		// serves the look-up.
		{"auth requests", "auth_requests", `expires_at <= ? AND NOT EXISTS (SELECT 1 FROM auth_codes c
			WHERE c.auth_request_id = auth_requests.id AND c.expires_at > ?)`, []any{ms(now), ms(now)}},
		{"auth codes", "auth_codes", `expires_at <= ?`, []any{ms(now.Add(-codeReuseWindow))}},
		// The expression of sessions_expiry_idx.
		{"sessions", "sessions", `min(idle_expires_at, absolute_expires_at) <= ?`, []any{ms(now)}},
		{"challenges", "challenges", `expires_at <= ?`, []any{ms(now)}},
		{"challenge receipts", "challenge_receipts", `expires_at <= ?`, []any{ms(now)}},
		{"provisional passwords", "provisional_passwords", `expires_at <= ?`, []any{ms(now)}},
		{"expired access tokens", "access_tokens", `expires_at <= ?`, []any{ms(now)}},
		{"revoked access tokens", "access_tokens", `revoked = 1`, nil},
		{"expired refresh tokens", "refresh_tokens", `expires_at <= ?`, []any{ms(now)}},
		{"revoked refresh tokens", "refresh_tokens", `revoked = 1`, nil},
		// Unobservable otherwise: the next hit would start a new window.
		{"rate-limit counters", "counters", `window_end <= ?`, []any{ms(now)}},
		// The partial index throttles_purge_idx: locks stay.
		{"throttles", "throttles", `last_failure_at < ? AND locked_at IS NULL`,
			[]any{ms(now.Add(-storage.ThrottleForgetAfter))}},
		{"reservations", "attempts_in_flight", `reserved_at < ?`, []any{ms(now.Add(-storage.ReservationForgetAfter))}},
	}
	if !mailBefore.IsZero() {
		purges = append(purges, purge{"sent mails", "outbox", `status = 'sent' AND sent_at < ?`, []any{ms(mailBefore)}})
	}
	if !auditBefore.IsZero() {
		purges = append(purges, purge{"audit events", "audit_events", `time < ?`, []any{ms(auditBefore)}})
	}

	var total int64
	for _, p := range purges {
		n, err := s.purgeInBatches(ctx, p.table, p.where, p.args)
		total += n
		if err != nil {
			return total, dbError("purge "+p.what, err)
		}
	}
	return total, nil
}

// purgeInBatches deletes the rows of table matching where (with args),
// purgeBatch at a time, until none is left.
func (s *Store) purgeInBatches(ctx context.Context, table, where string, args []any) (int64, error) {
	// table and where are constants of PurgeExpired, never input.
	query := `DELETE FROM ` + table + ` WHERE rowid IN (SELECT rowid FROM ` + table + ` WHERE ` + where + ` LIMIT ?)`
	args = append(slices.Clip(args), purgeBatch)
	var total int64
	for {
		res, err := s.w.ExecContext(ctx, query, args...)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
		if n < purgeBatch {
			return total, nil
		}
	}
}
