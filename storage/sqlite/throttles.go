package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/caf-extranet/idp/storage"
)

const throttleColumns = `key, failures, last_failure_at, locked_at`

func scanThrottle(row rowScanner) (storage.Throttle, error) {
	var th storage.Throttle
	err := row.Scan(&th.Key, &th.Failures, (*msTime)(&th.LastFailureAt), msTimePtr{&th.LockedAt})
	return th, err
}

// decayedFailures is the failures of the row at ?2 on a key that forgets one
// per ?3 milliseconds (a last failure in the future decays nothing).
const decayedFailures = `MAX(0, throttles.failures - MAX(0, ?2 - throttles.last_failure_at) / ?3)`

// addDecayingFailure counts a failure on key ?1 at ?2 that forgets one per
// ?3 milliseconds.
const addDecayingFailure = `INSERT INTO throttles (` + throttleColumns + `)
	VALUES (?1, 1, ?2, NULL)
	ON CONFLICT (key) DO UPDATE SET
		failures        = ` + decayedFailures + ` + 1,
		last_failure_at = ?2`

// ReserveAttempt reads the key and counts its live reservations, then
// inserts one if there is room, in one write transaction: SQLite's single
// writer judges concurrent reservations one after the other.
func (s *Store) ReserveAttempt(ctx context.Context, key, id string, limit storage.AttemptLimit, now time.Time) (storage.Throttle, int, bool, error) {
	var (
		th       storage.Throttle
		inFlight int
		reserved bool
	)
	err := s.write(ctx, func(q querier) error {
		var err error
		th, err = scanThrottle(q.QueryRowContext(ctx, `SELECT `+throttleColumns+` FROM throttles WHERE key = ?`, key))
		if errors.Is(err, sql.ErrNoRows) {
			th, err = storage.Throttle{Key: key}, nil
		}
		if err != nil {
			return err
		}
		if err := q.QueryRowContext(ctx, `SELECT count(*) FROM attempts_in_flight WHERE key = ? AND reserved_at > ?`,
			key, ms(now.Add(-limit.Life))).Scan(&inFlight); err != nil {
			return err
		}
		if inFlight >= limit.Room(th.DecayedAt(now, limit.Every)) {
			return nil
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO attempts_in_flight (id, key, reserved_at) VALUES (?, ?, ?)`,
			id, key, ms(now)); err != nil {
			return err
		}
		inFlight, reserved = inFlight+1, true
		return nil
	})
	if err != nil {
		return storage.Throttle{}, 0, false, dbError("reserve attempt", err)
	}
	return th, inFlight, reserved, nil
}

// SettleAttempt ends the reservation and, for a failure, counts it by an
// upsert (the key's row may have been purged meanwhile).
func (s *Store) SettleAttempt(ctx context.Context, key, id string, failed bool, every time.Duration, now time.Time) error {
	return s.write(ctx, func(q querier) error {
		if err := exec(ctx, q, "settle attempt", `DELETE FROM attempts_in_flight WHERE id = ?`, id); err != nil || !failed {
			return err
		}
		return exec(ctx, q, "settle attempt", addDecayingFailure, key, ms(now), max(every.Milliseconds(), 1))
	})
}

// AddDecayingFailure counts one failure on a key that forgets one per every
// since its last one (times in milliseconds; a last failure in the future,
// another instance's clock ahead, decays nothing).
func (s *Store) AddDecayingFailure(ctx context.Context, key string, every time.Duration, now time.Time) (storage.Throttle, error) {
	var th storage.Throttle
	err := s.write(ctx, func(q querier) (err error) {
		th, err = scanThrottle(q.QueryRowContext(ctx, addDecayingFailure+` RETURNING `+throttleColumns,
			key, ms(now), max(every.Milliseconds(), 1)))
		return err
	})
	if err != nil {
		return storage.Throttle{}, dbError("add decaying failure", err)
	}
	return th, nil
}

// ChargeThrottle charges key on condition that it still holds expect: the
// upsert's WHERE leaves the row alone, and RETURNING then gives no row,
// when another write came first (a key without a row takes the insert).
func (s *Store) ChargeThrottle(ctx context.Context, key string, expect storage.Throttle, failures, lockAfter int, now time.Time) (storage.Throttle, bool, error) {
	var th storage.Throttle
	err := s.write(ctx, func(q querier) (err error) {
		th, err = scanThrottle(q.QueryRowContext(ctx, `INSERT INTO throttles (`+throttleColumns+`)
			VALUES (?1, 1, ?2, CASE WHEN ?3 > 0 AND 1 >= ?3 THEN ?2 END)
			ON CONFLICT (key) DO UPDATE SET
				failures        = ?4,
				last_failure_at = ?2,
				locked_at       = COALESCE(throttles.locked_at, CASE WHEN ?3 > 0 AND ?4 >= ?3 THEN ?2 END)
			WHERE throttles.failures = ?5 AND throttles.last_failure_at = ?6
			RETURNING `+throttleColumns, key, ms(now), lockAfter, failures, expect.Failures, ms(expect.LastFailureAt)))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
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
	return exec(ctx, s.w, "refund throttle", `UPDATE throttles SET
			failures = CASE WHEN failures = ?2 AND last_failure_at = ?3 THEN ?4 ELSE MAX(failures - 1, 0) END,
			last_failure_at = CASE WHEN failures = ?2 AND last_failure_at = ?3 THEN ?5 ELSE last_failure_at END
		WHERE key = ?1 AND locked_at IS NULL`,
		key, charged.Failures, ms(charged.LastFailureAt), before.Failures, ms(before.LastFailureAt))
}

// GetThrottle returns key's state; a key without one gets a zero Throttle
// (no failure, not locked), never ErrNotFound.
func (s *Store) GetThrottle(ctx context.Context, key string) (storage.Throttle, error) {
	th, err := scanThrottle(s.r.QueryRowContext(ctx, `SELECT `+throttleColumns+` FROM throttles WHERE key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Throttle{Key: key}, nil
	}
	if err != nil {
		return storage.Throttle{}, dbError("get throttle", err)
	}
	return th, nil
}

// GetThrottles reads every key in one query.
func (s *Store) GetThrottles(ctx context.Context, keys ...string) ([]storage.Throttle, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+throttleColumns+` FROM throttles WHERE key IN (?`+
		strings.Repeat(", ?", len(keys)-1)+`)`, args...)
	if err != nil {
		return nil, dbError("get throttles", err)
	}
	defer rows.Close()
	var found []storage.Throttle
	for rows.Next() {
		th, err := scanThrottle(rows)
		if err != nil {
			return nil, dbError("get throttles", err)
		}
		found = append(found, th)
	}
	if err := rows.Err(); err != nil {
		return nil, dbError("get throttles", err)
	}
	return storage.InKeyOrder(keys, found), nil
}

// ResetThrottle forgets key; a key without state is not an error.
func (s *Store) ResetThrottle(ctx context.Context, key string) error {
	return exec(ctx, s.w, "reset throttle", `DELETE FROM throttles WHERE key = ?`, key)
}
