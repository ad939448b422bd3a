package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// throttleColumns are the columns an insert names; throttleFields those
// scanThrottle reads.
const (
	throttleColumns = `key, failures, last_failure_at, locked_at`
	throttleFields  = throttleColumns + `, in_flight, in_flight_at`
)

func scanThrottle(row rowScanner) (storage.Throttle, error) {
	var th storage.Throttle
	var inFlightAt *time.Time
	err := row.Scan(&th.Key, &th.Failures, (*msTime)(&th.LastFailureAt), msTimePtr{&th.LockedAt}, &th.InFlight, msTimePtr{&inFlightAt})
	if inFlightAt != nil {
		th.InFlightAt = *inFlightAt
	}
	return th, err
}

// decayedFailures is the failures of the row at ?2 on a key that forgets one
// per ?3 milliseconds (a last failure in the future decays nothing).
const decayedFailures = `MAX(0, throttles.failures - MAX(0, ?2 - throttles.last_failure_at) / ?3)`

// liveInFlight is the row's attempts in flight at ?2 whose last reservation
// is younger than ?4 milliseconds.
const liveInFlight = `(CASE WHEN throttles.in_flight_at > ?2 - ?4 THEN throttles.in_flight ELSE 0 END)`

// ReserveAttempt reserves in one upsert, which its WHERE leaves alone (and
// RETURNING then gives no row) when the address has no room.
func (s *Store) ReserveAttempt(ctx context.Context, key string, free int, every, life time.Duration, now time.Time) (storage.Throttle, bool, error) {
	var th storage.Throttle
	err := s.write(ctx, func(q querier) (err error) {
		th, err = scanThrottle(q.QueryRowContext(ctx, `INSERT INTO throttles (`+throttleColumns+`, in_flight, in_flight_at)
			VALUES (?1, 0, ?2, NULL, 1, ?2)
			ON CONFLICT (key) DO UPDATE SET
				in_flight    = `+liveInFlight+` + 1,
				in_flight_at = ?2
			WHERE `+liveInFlight+` = 0 OR `+decayedFailures+` + `+liveInFlight+` < ?5
			RETURNING `+throttleFields, key, ms(now), max(every.Milliseconds(), 1), life.Milliseconds(), free))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Throttle{}, false, nil
	}
	if err != nil {
		return storage.Throttle{}, false, dbError("reserve attempt", err)
	}
	return th, true, nil
}

// SettleAttempt ends a reservation; a failure is also counted, by an upsert
// (the key's row may have been purged meanwhile).
func (s *Store) SettleAttempt(ctx context.Context, key string, failed bool, every time.Duration, now time.Time) error {
	return s.write(ctx, func(q querier) error {
		if !failed {
			return exec(ctx, q, "settle attempt", `UPDATE throttles SET in_flight = MAX(in_flight - 1, 0) WHERE key = ?`, key)
		}
		return exec(ctx, q, "settle attempt", `INSERT INTO throttles (`+throttleColumns+`)
			VALUES (?1, 1, ?2, NULL)
			ON CONFLICT (key) DO UPDATE SET
				failures        = `+decayedFailures+` + 1,
				last_failure_at = ?2,
				in_flight       = MAX(throttles.in_flight - 1, 0)`, key, ms(now), max(every.Milliseconds(), 1))
	})
}

// AddDecayingFailure counts one failure on a key that forgets one per every
// since its last one (times in milliseconds; a last failure in the future,
// another instance's clock ahead, decays nothing).
func (s *Store) AddDecayingFailure(ctx context.Context, key string, every time.Duration, now time.Time) (storage.Throttle, error) {
	var th storage.Throttle
	err := s.write(ctx, func(q querier) (err error) {
		th, err = scanThrottle(q.QueryRowContext(ctx, `INSERT INTO throttles (`+throttleColumns+`)
			VALUES (?1, 1, ?2, NULL)
			ON CONFLICT (key) DO UPDATE SET
				failures        = `+decayedFailures+` + 1,
				last_failure_at = ?2
			RETURNING `+throttleFields, key, ms(now), max(every.Milliseconds(), 1)))
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
			RETURNING `+throttleFields, key, ms(now), lockAfter, failures, expect.Failures, ms(expect.LastFailureAt)))
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
	th, err := scanThrottle(s.r.QueryRowContext(ctx, `SELECT `+throttleFields+` FROM throttles WHERE key = ?`, key))
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
	rows, err := s.r.QueryContext(ctx, `SELECT `+throttleFields+` FROM throttles WHERE key IN (?`+
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
