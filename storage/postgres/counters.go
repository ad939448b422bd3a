package postgres

import (
	"context"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// HitCounter counts one hit on key in its fixed window and returns the count
// so far; a hit once the window has ended starts a new one at now. One
// upsert, so concurrent hits from any instance are all counted.
func (s *Store) HitCounter(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, hitCounter+` SELECT count FROM hit`, key, now, now.Add(window)).Scan(&n)
	if err != nil {
		return 0, dbError("hit counter", err)
	}
	return n, nil
}

// hitCounter counts a hit on key $1 at $2 in a window ending at $3 (when it
// starts one), as the CTE hit holding the count.
const hitCounter = `WITH hit AS (
	INSERT INTO counters AS c (key, window_start, window_end, count)
	VALUES ($1, $2, $3, 1)
	ON CONFLICT (key) DO UPDATE SET
		window_start = CASE WHEN c.window_end <= $2 THEN $2 ELSE c.window_start END,
		window_end = CASE WHEN c.window_end <= $2 THEN $3 ELSE c.window_end END,
		count = CASE WHEN c.window_end <= $2 THEN 1 ELSE c.count + 1 END
	RETURNING count
)`

// CreateCountedChallenge counts the hit and stores the challenge unless the
// count is over max, in one statement: the insert reads the count.
func (s *Store) CreateCountedChallenge(ctx context.Context, key string, window time.Duration, max int64, ch storage.Challenge, now time.Time) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, hitCounter+`, created AS (
			INSERT INTO challenges (`+challengeColumns+`)
			SELECT $5::text, $6::text, $7::text, $8::text, $9::timestamptz, $10::timestamptz
			FROM hit WHERE hit.count <= $4
		)
		SELECT count FROM hit`, key, now, now.Add(window), max,
		ch.ID, ch.Kind, ch.AnswerHash, ch.BindingHash, ch.CreatedAt, ch.ExpiresAt).Scan(&n)
	if err != nil {
		return 0, dbError("create counted challenge", err)
	}
	return n, nil
}
