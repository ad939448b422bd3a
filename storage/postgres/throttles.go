package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/caf-extranet/idp/storage"
)

const throttleColumns = `key, failures, last_failure_at, locked_at`

func scanThrottle(row rowScanner) (storage.Throttle, error) {
	var th storage.Throttle
	err := row.Scan(&th.Key, &th.Failures, &th.LastFailureAt, &th.LockedAt)
	th.LastFailureAt, th.LockedAt = utc(th.LastFailureAt), utcPtr(th.LockedAt)
	return th, err
}

// decayedFailures is the failures of row t at $2 on a key that forgets one
// per $3 microseconds (a last failure in the future decays nothing).
const decayedFailures = `GREATEST(0, t.failures - floor(GREATEST(0,
	EXTRACT(EPOCH FROM ($2::timestamptz - t.last_failure_at)) * 1000000) / $3::bigint)::integer)`

// reservationLockSpace is the first key of the advisory locks that
// serialise the reservations of one address (the second is a hash of its
// key; a collision only costs some waiting).
const reservationLockSpace int32 = 0x69647061 // "idpa"

// reserveAttempt counts the address's live reservations and inserts one if
// there is room, in one statement that runs after the key's advisory lock
// is taken: its snapshot, taken then, sees every reservation committed
// before, and those after it wait for the lock. $1 key, $2 now, $3 every
// (µs), $4 life (µs), $5 free, $6 past free, $7 id.
const reserveAttempt = `WITH th AS (
	SELECT ` + decayedFailures + ` AS failures, t.key, t.failures AS stored, t.last_failure_at, t.locked_at
	FROM throttles t WHERE t.key = $1
), live AS (
	SELECT count(*)::integer AS n FROM attempts_in_flight
	WHERE key = $1 AND reserved_at > $2::timestamptz - make_interval(secs => $4::bigint / 1000000.0)
), reserved AS (
	INSERT INTO attempts_in_flight (id, key, reserved_at)
	SELECT $7::text, $1::text, $2::timestamptz FROM live LEFT JOIN th ON true
	WHERE live.n < GREATEST($5::integer - COALESCE(th.failures, 0), $6::integer)
	RETURNING 1
)
SELECT th.key, th.stored, th.last_failure_at, th.locked_at,
	(SELECT n FROM live) + (SELECT count(*)::integer FROM reserved), EXISTS (SELECT 1 FROM reserved)
FROM (SELECT 1) one LEFT JOIN th ON true`

// ReserveAttempt takes the address's advisory lock and reserves, in one
// round trip (a batch, committed asynchronously like the throttles'
// other writes).
func (s *Store) ReserveAttempt(ctx context.Context, key, id string, limit storage.AttemptLimit, now time.Time) (storage.Throttle, int, bool, error) {
	b := asyncBatch()
	b.Queue(lockGrantQuery, reservationLockSpace, key)
	b.Queue(reserveAttempt, key, now, max(limit.Every.Microseconds(), 1), limit.Life.Microseconds(),
		limit.Free, limit.PastFree, id)
	var (
		th       = storage.Throttle{Key: key}
		thKey    *string
		failures *int
		last     *time.Time
		inFlight int
		reserved bool
	)
	err := batchRow{s.pool.SendBatch(ctx, b), 2}.Scan(&thKey, &failures, &last, &th.LockedAt, &inFlight, &reserved)
	if err != nil {
		return storage.Throttle{}, 0, false, dbError("reserve attempt", err)
	}
	if thKey != nil {
		th.Failures, th.LastFailureAt, th.LockedAt = *failures, utc(*last), utcPtr(th.LockedAt)
	}
	return th, inFlight, reserved, nil
}

// SettleAttempt ends the reservation and, for a failure, counts it by an
// upsert (the key's row may have been purged meanwhile), in one round trip.
func (s *Store) SettleAttempt(ctx context.Context, key, id string, failed bool, every time.Duration, now time.Time) error {
	b := asyncBatch()
	b.Queue(`DELETE FROM attempts_in_flight WHERE id = $1`, id)
	if failed {
		b.Queue(addDecayingFailure, key, now, max(every.Microseconds(), 1))
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return dbError("settle attempt", err)
	}
	return nil
}

// AddDecayingFailure counts one failure on a key that forgets one per every
// since its last one (a last failure in the future, another instance's
// clock ahead, decays nothing).
func (s *Store) AddDecayingFailure(ctx context.Context, key string, every time.Duration, now time.Time) (storage.Throttle, error) {
	th, err := scanThrottle(s.asyncRow(ctx, addDecayingFailure+` RETURNING `+throttleColumns, key, now, max(every.Microseconds(), 1)))
	if err != nil {
		return storage.Throttle{}, dbError("add decaying failure", err)
	}
	return th, nil
}

// addDecayingFailure counts a failure on key $1 at $2 that forgets one per
// $3 microseconds.
const addDecayingFailure = `INSERT INTO throttles AS t (` + throttleColumns + `)
	VALUES ($1, 1, $2, NULL)
	ON CONFLICT (key) DO UPDATE SET
		failures        = ` + decayedFailures + ` + 1,
		last_failure_at = $2`

// ChargeThrottle charges key on condition that it still holds expect: the
// upsert's WHERE leaves the row alone, and RETURNING then gives no row,
// when another write came first (a key without a row takes the insert; a
// concurrent insert makes this one an update, judged by the WHERE).
func (s *Store) ChargeThrottle(ctx context.Context, key string, expect storage.Throttle, failures, lockAfter int, now time.Time) (storage.Throttle, bool, error) {
	th, err := scanThrottle(s.asyncRow(ctx, `INSERT INTO throttles AS t (`+throttleColumns+`)
		VALUES ($1, 1, $2, CASE WHEN $3::integer > 0 AND 1 >= $3::integer THEN $2::timestamptz END)
		ON CONFLICT (key) DO UPDATE SET
			failures        = $4,
			last_failure_at = $2,
			locked_at       = COALESCE(t.locked_at, CASE WHEN $3::integer > 0 AND $4::integer >= $3::integer THEN $2::timestamptz END)
		WHERE t.failures = $5 AND t.last_failure_at = $6
		RETURNING `+throttleColumns, key, now, lockAfter, failures, expect.Failures, expect.LastFailureAt))
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Throttle{}, false, nil
	}
	if err != nil {
		return storage.Throttle{}, false, dbError("charge throttle", err)
	}
	return th, true, nil
}

// RefundThrottle puts an unlocked key back to before if it still holds
// charged, else takes one failure off. (Every expression of an UPDATE reads
// the row as it was.)
func (s *Store) RefundThrottle(ctx context.Context, key string, charged, before storage.Throttle) error {
	if err := s.asyncExec(ctx, `UPDATE throttles SET
			failures = CASE WHEN failures = $2 AND last_failure_at = $3 THEN $4 ELSE GREATEST(failures - 1, 0) END,
			last_failure_at = CASE WHEN failures = $2 AND last_failure_at = $3 THEN $5 ELSE last_failure_at END
		WHERE key = $1 AND locked_at IS NULL`,
		key, charged.Failures, charged.LastFailureAt, before.Failures, before.LastFailureAt); err != nil {
		return dbError("refund throttle", err)
	}
	return nil
}

// GetThrottle returns key's state; a key without one gets a zero Throttle
// (no failure, not locked), never ErrNotFound.
func (s *Store) GetThrottle(ctx context.Context, key string) (storage.Throttle, error) {
	th, err := scanThrottle(s.pool.QueryRow(ctx, `SELECT `+throttleColumns+` FROM throttles WHERE key = $1`, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Throttle{Key: key}, nil
	}
	if err != nil {
		return storage.Throttle{}, dbError("get throttle", err)
	}
	return th, nil
}

// GetThrottles reads every key in one query.
func (s *Store) GetThrottles(ctx context.Context, keys ...string) ([]storage.Throttle, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+throttleColumns+` FROM throttles WHERE key = ANY($1)`, keys)
	if err != nil {
		return nil, dbError("get throttles", err)
	}
	found, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Throttle, error) { return scanThrottle(row) })
	if err != nil {
		return nil, dbError("get throttles", err)
	}
	return storage.InKeyOrder(keys, found), nil
}

// ResetThrottle forgets key; a key without state is not an error.
func (s *Store) ResetThrottle(ctx context.Context, key string) error {
	if err := s.asyncExec(ctx, `DELETE FROM throttles WHERE key = $1`, key); err != nil {
		return dbError("reset throttle", err)
	}
	return nil
}

// The throttles' writes commit asynchronously (synchronous_commit off for
// their own transaction): a login writes four of them, and waiting for
// each to reach the disk cost PostgreSQL's logins a tenth of their
// throughput in the bench. A database crash may then forget the last
// fraction of a second of them (wal_writer_delay, a few hundred
// milliseconds at most): a few attempts' counts, or reservations, which
// lapse anyway. Nothing else is written so.
const asyncCommit = `SELECT set_config('synchronous_commit', 'off', true)`

// asyncBatch is a batch (one transaction, one round trip) that commits
// asynchronously; queue the statements after asyncCommit.
func asyncBatch() *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue(asyncCommit)
	return b
}

// asyncExec runs query in a transaction of its own that commits
// asynchronously (one round trip).
func (s *Store) asyncExec(ctx context.Context, query string, args ...any) error {
	b := asyncBatch()
	b.Queue(query, args...)
	return s.pool.SendBatch(ctx, b).Close()
}

// asyncRow is QueryRow for asyncExec's queries.
func (s *Store) asyncRow(ctx context.Context, query string, args ...any) pgx.Row {
	b := asyncBatch()
	b.Queue(query, args...)
	return batchRow{s.pool.SendBatch(ctx, b), 1}
}
