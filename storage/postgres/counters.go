package postgres

import (
	"context"
	"time"
)

// HitCounter counts one hit on key in its fixed window and returns the count
// so far; a hit once the window has ended starts a new one at now. One
// upsert, so concurrent hits from any instance are all counted.
func (s *Store) HitCounter(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `INSERT INTO counters AS c (key, window_start, window_end, count)
		VALUES ($1, $2, $3, 1)
		ON CONFLICT (key) DO UPDATE SET
			window_start = CASE WHEN c.window_end <= $2 THEN $2 ELSE c.window_start END,
			window_end = CASE WHEN c.window_end <= $2 THEN $3 ELSE c.window_end END,
			count = CASE WHEN c.window_end <= $2 THEN 1 ELSE c.count + 1 END
		RETURNING count`, key, now, now.Add(window)).Scan(&n)
	if err != nil {
		return 0, dbError("hit counter", err)
	}
	return n, nil
}
