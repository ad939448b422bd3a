package sqlite

import (
	"context"
	"errors"
	"time"

	"github.com/caf-extranet/idp/storage"
)

const challengeColumns = `id, kind, answer_hash, binding_hash, created_at, expires_at`

func insertChallenge(ctx context.Context, q querier, c storage.Challenge) error {
	return exec(ctx, q, "create challenge", `INSERT INTO challenges (`+challengeColumns+`)
		VALUES (?, ?, ?, ?, ?, ?)`,
		c.ID, c.Kind, c.AnswerHash, c.BindingHash, ms(c.CreatedAt), ms(c.ExpiresAt))
}

// CreateCountedChallenge counts the hit and stores the challenge unless the
// count is over max, in one write.
func (s *Store) CreateCountedChallenge(ctx context.Context, key string, window time.Duration, max int64, c storage.Challenge, now time.Time) (int64, error) {
	return s.countedWrite(ctx, key, window, max, now, func(q querier) error { return insertChallenge(ctx, q, c) })
}

// countedWrite counts one hit on key at now and, when the count is at most
// max, runs then in the same transaction. It returns the count.
func (s *Store) countedWrite(ctx context.Context, key string, window time.Duration, max int64, now time.Time, then func(q querier) error) (int64, error) {
	var count int64
	err := s.write(ctx, func(q querier) error {
		var err error
		if count, err = hitCounter(ctx, q, key, window, now); err != nil {
			return dbError("hit counter", err)
		}
		if count > max {
			return nil
		}
		return then(q)
	})
	if err != nil {
		return 0, err
	}
	return count, nil
}

// TakeChallenge reads the throttle on a reader, then consumes the challenge:
// without round trips, one statement more costs SQLite less than moving a
// read into the one writer's transaction.
func (s *Store) TakeChallenge(ctx context.Context, id, key string, now time.Time) (*storage.Challenge, storage.Throttle, error) {
	th, err := s.GetThrottle(ctx, key)
	if err != nil {
		return nil, storage.Throttle{}, err
	}
	if id == "" {
		// No challenge has it: not worth a turn of the one writer (the
		// throttled page, which draws none, posts none).
		return nil, th, nil
	}
	c, err := s.ConsumeChallenge(ctx, id, now)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, th, nil
	}
	if err != nil {
		return nil, storage.Throttle{}, err
	}
	return &c, th, nil
}

// ConsumeChallenge deletes the challenge and returns it: one statement, so of
// concurrent callers exactly one gets the row. An expired challenge is deleted
// all the same, and reported as ErrNotFound.
func (s *Store) ConsumeChallenge(ctx context.Context, id string, now time.Time) (storage.Challenge, error) {
	var c storage.Challenge
	// The deletion stands whatever the expiry (checked after it).
	err := s.write(ctx, func(q querier) error {
		return q.QueryRowContext(ctx, `DELETE FROM challenges WHERE id = ? RETURNING `+challengeColumns, id).Scan(
			&c.ID, &c.Kind, &c.AnswerHash, &c.BindingHash, (*msTime)(&c.CreatedAt), (*msTime)(&c.ExpiresAt))
	})
	if err != nil {
		return storage.Challenge{}, dbError("consume challenge", err)
	}
	if ms(c.ExpiresAt) <= ms(now) {
		return storage.Challenge{}, notFound("consume challenge: expired")
	}
	return c, nil
}

// ChallengeReceipt reads the receipt on a reader.
func (s *Store) ChallengeReceipt(ctx context.Context, id string, now time.Time) (bool, error) {
	var found bool
	err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM challenge_receipts WHERE id = ? AND expires_at > ?)`,
		id, ms(now)).Scan(&found)
	if err != nil {
		return false, dbError("read challenge receipt", err)
	}
	return found, nil
}
